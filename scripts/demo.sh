#!/usr/bin/env bash
# The main job: set up, ingest the tweet datasets in ../shared/data (or the bundled format samples
# when that folder is absent) into the embedded store, find the stories, and start the service
# (HTTP API, OpenAI-compatible chat, web page) on it. It prints the URL; Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export TOWNSQUARE_HOME=${TOWNSQUARE_HOME:-$PWD/.townsquare}
DATA=${1:-../shared/data}
PORT=${PORT:-8000}
if [ ! -d "$DATA" ]; then
  echo "no $DATA: ingesting the bundled format samples instead" >&2
  DATA=tests/fixtures/formats
fi
.venv/bin/townsquare ingest "$DATA"
.venv/bin/townsquare stats
# What's happening, from the command line (this also builds the stories the service starts from).
.venv/bin/townsquare trends --window 1d --limit 10
.venv/bin/townsquare stories --limit 5
# Ads: the demo campaign catalog, the brand-safety classifier (trained from the data folder once,
# ~70 s), and an ad for the most active author of the stream, with why it was chosen.
.venv/bin/townsquare ads campaigns load --demo
if [ -d "$DATA/tweeteval" ] && [ ! -f "$TOWNSQUARE_HOME/models/brand_safety.joblib" ]; then
  .venv/bin/townsquare ads safety train --data "$DATA"
fi
USER_=$(.venv/bin/python - <<'PY'
import os, sqlite3
db = sqlite3.connect(os.path.join(os.environ["TOWNSQUARE_HOME"], "townsquare.db"))
row = db.execute("SELECT lower(author_handle) FROM posts WHERE author_handle IS NOT NULL "
                 "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1").fetchone()
print(row[0] if row else "")
PY
)
if [ -n "$USER_" ]; then
  .venv/bin/townsquare ads serve "$USER_" || true
fi
# The service. --no-auth is for this local demo only (the server logs a warning); in production
# create keys with `townsquare keys create --scope read --scope ingest` and drop the flag.
echo "starting the service: open http://localhost:$PORT/ (API docs: http://localhost:$PORT/docs)"
exec .venv/bin/townsquare serve --no-auth --port "$PORT"

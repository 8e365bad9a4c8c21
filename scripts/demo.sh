#!/usr/bin/env bash
# The main job: set up, ingest the tweet datasets in ../shared/data (or the bundled format samples
# when that folder is absent) into the embedded store, and print what was stored.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export TOWNSQUARE_HOME=${TOWNSQUARE_HOME:-$PWD/.townsquare}
DATA=${1:-../shared/data}
if [ ! -d "$DATA" ]; then
  echo "no $DATA: ingesting the bundled format samples instead" >&2
  DATA=tests/fixtures/formats
fi
.venv/bin/townsquare ingest "$DATA"
.venv/bin/townsquare stats
# Search the stream (lexical right away; semantic once `townsquare embed` has run).
.venv/bin/townsquare search "earthquake victims -filter:links" --limit 5
# What's happening: trends of the last day of the stream, stories, a cited summary.
.venv/bin/townsquare trends --window 1d --limit 10
.venv/bin/townsquare stories --limit 5
.venv/bin/townsquare summarize "earthquake victims"

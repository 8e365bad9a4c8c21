"""``townsquare compact``: the maintenance step after deletions (``services.maintenance``).

    townsquare delete 1212092628029698048
    townsquare compact --json       # {"lexical_index": {...}, "vectors": {...}, "stories": {...},
                                    #  "store": {"deletions": 1, ...}, "seconds": 0.4}

``delete`` removes a post from the store and from search at once; ``compact`` then rewrites every
file that may still hold its bytes (the tantivy index, the vector index, the stories, the FTS5
index and the write-ahead log). A running server does this by itself once it is idle after a
deletion; run it by hand when no server serves the home.
"""
from __future__ import annotations

import typer

from townsquare.cli.common import Home, Json, app, fail, out, print_json, settings_of, store_of


@app.command()
def compact(ctx: typer.Context, home: Home = None, json_out: Json = False) -> None:
    """After deletions: rewrite every index and file that may still hold deleted posts' bytes."""
    from townsquare.services.maintenance import compact_home

    settings = settings_of(ctx, home)
    with store_of(settings, write=True) as store:
        try:
            did = compact_home(store, settings.home)
        except ConnectionError as e:      # the writer lock: a server serves this home
            fail(f"{e} (a running server compacts its home by itself)")
    if json_out:
        print_json(did)
        return
    gone = did["store"]["deletions"]
    out.print(f"compacted in {did['seconds']:.2f} s: {gone} deletion{'s' * (gone != 1)} since "
              f"the last compaction; tantivy index "
              f"{'rewritten' if did['lexical_index'].get('rebuilt') else 'unchanged'}, "
              f"{did['vectors'].get('tombstones_scrubbed', 0)} vector tombstones zeroed")

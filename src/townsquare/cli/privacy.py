"""``townsquare optout``: a user's objection to profiling, recorded by an operator acting for them
(``services.privacy``; the API has ``POST /v1/optout`` for a user's own key).

    townsquare optout USER [--json]          # no profile, ads not personalized, out of training
    townsquare optout USER --undo [--json]   # lift it: profiling resumes when an ad is next chosen
    townsquare export --user USER [-o FILE]  # everything held about USER (``cli.ingest``)
"""
from __future__ import annotations

import time
from typing import Annotated

import typer

from townsquare.cli.common import Home, Json, app, fail, out, print_json, printable, settings_of, \
    store_of


@app.command()
def optout(ctx: typer.Context,
           user: Annotated[str, typer.Argument(help="An author handle or numeric id.")],
           home: Home = None,
           undo: Annotated[bool, typer.Option("--undo", help="Lift the opt-out.")] = False,
           json_out: Json = False) -> None:
    """Opt USER out of profiling (GDPR Art. 21): their ad profile is deleted at once, their ads
    are not personalized, and the next training corpus leaves their posts out."""
    from townsquare.services import InputError
    from townsquare.services.privacy import ad_stores, opt_out
    settings = settings_of(ctx, home)
    profiles, campaigns = ad_stores(settings.home)
    with store_of(settings, write=True) as store:
        try:
            r = opt_out(store, profiles, user, undo=undo)
        except InputError as e:
            fail(f"USER: {e}")
        finally:
            profiles.close()
            campaigns.close()
    if json_out:
        print_json(r)
        return
    who = printable(r["user"], markup=True)
    if r["opted_out"]:
        at = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(r["opted_out_at"] / 1000))
        out.print(f"{who}: opted out since {at}" + ("" if r["changed"] else " (already)"),
                  highlight=False)
    else:
        out.print(f"{who}: not opted out" + (" any more" if r["changed"] else ""),
                  highlight=False)
    for e in r["effects"]:
        out.print(f"  - {printable(e, markup=True)}", highlight=False)

"""``townsquare ads`` and ``townsquare profile``: the ads commands of the CLI.

    townsquare ads campaigns load --demo            # the documented demo catalog (ads/catalog.json)
    townsquare ads campaigns load FILE.json         # a JSON list of campaigns (or one object)
    townsquare ads campaigns list [--advertiser A] [--json]
    townsquare ads creatives generate CAMPAIGN [--lang fr]   # variations, pending review
    townsquare ads creatives approve ID / reject ID
    townsquare ads serve USER [--context "QUERY"] [--backend local|extractive] [--json]
    townsquare ads why IMPRESSION
    townsquare ads safety train [--data ../shared/data]      # the brand-safety classifier
    townsquare ads minor USER [--unset]             # a user known to be a minor: no profile, ever
    townsquare profile USER [--delete] [--json]     # what the ads know about a user; delete it

Everything lives in the home folder: ``ads.db`` (campaigns, creatives, impressions, profiles)
and ``models/brand_safety.joblib``.
"""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Annotated, Optional

import typer

from townsquare.cli.common import Home, Json, app, err, fail, out, print_json, settings_of, store_of
from townsquare.settings import Settings

ads_app = typer.Typer(no_args_is_help=True, help="Personalized ads: campaigns, serving, why.")
campaigns_app = typer.Typer(no_args_is_help=True, help="Advertisers' campaigns.")
creatives_app = typer.Typer(no_args_is_help=True, help="Generated creatives and their review.")
safety_app = typer.Typer(no_args_is_help=True, help="The brand-safety classifier.")
app.add_typer(ads_app, name="ads")
ads_app.add_typer(campaigns_app, name="campaigns")
ads_app.add_typer(creatives_app, name="creatives")
ads_app.add_typer(safety_app, name="safety")


def _campaigns(settings: Settings):
    from townsquare.ads.campaigns import CampaignStore
    from townsquare.ads.serving import ADS_DB
    return CampaignStore(settings.home / ADS_DB)


def demo_catalog() -> list[dict]:
    """The demo campaigns shipped with the package (documented in the file itself)."""
    text = resources.files("townsquare.ads").joinpath("catalog.json").read_text("utf-8")
    return json.loads(text)["campaigns"]


@campaigns_app.command("load")
def campaigns_load(
    ctx: typer.Context,
    file: Annotated[Optional[Path], typer.Argument(help="A JSON file of campaigns.")] = None,
    demo: Annotated[bool, typer.Option("--demo", help="The demo catalog.")] = False,
    home: Home = None,
) -> None:
    """Validate and store campaigns; each error names the campaign and the field."""
    from townsquare.ads.campaigns import CampaignError, parse_campaign
    from townsquare.ads.sensitive import SensitiveDetector
    if (file is None) == (not demo):
        fail("give a FILE or --demo (one of them)")
    if demo:
        items = demo_catalog()
    else:
        try:
            doc = json.loads(file.read_text("utf-8"))
        except (OSError, ValueError) as e:
            fail(f"{file}: {e}")
        items = doc["campaigns"] if isinstance(doc, dict) and "campaigns" in doc else \
            (doc if isinstance(doc, list) else [doc])
    store, detector, ok, bad = _campaigns(settings_of(ctx, home)), SensitiveDetector(), 0, 0
    for i, d in enumerate(items):
        try:
            store.put(parse_campaign(d, detector=detector))
            ok += 1
        except CampaignError as e:
            bad += 1
            name = d.get("id") if isinstance(d, dict) else None
            err.print(f"[red]campaign {i}[/] ({name or 'no id'}): {e}", highlight=False)
    out.print(f"loaded {ok} campaign(s)" + (f"; {bad} refused (see above)" if bad else ""))
    if bad:
        raise typer.Exit(1)


@campaigns_app.command("list")
def campaigns_list(ctx: typer.Context, home: Home = None,
                   advertiser: Annotated[Optional[str], typer.Option(help="Only this one's.")] = None,
                   json_out: Json = False) -> None:
    """Campaigns with their spend."""
    store = _campaigns(settings_of(ctx, home))
    rows = [{**c.to_dict(), "spent": round(store.spent(c.id), 4),
             "impressions": store.impressions_of(c.id)} for c in store.list(advertiser=advertiser)]
    if json_out:
        print_json(rows)
        return
    for r in rows:
        out.print(f"{r['id']}  {r['advertiser']}  {r['name']}  {','.join(r['brief']['languages'])}"
                  f"  bid {r['bid_cpm']:g}  spent {r['spent']:g}/{r['budget']:g}  "
                  f"{r['impressions']} impressions  {r['status']}", highlight=False)
    if not rows:
        out.print("no campaigns (townsquare ads campaigns load --demo)")


@creatives_app.command("generate")
def creatives_generate(ctx: typer.Context, campaign: str, home: Home = None,
                       lang: Annotated[Optional[str], typer.Option(help="Language.")] = None,
                       backend: Annotated[Optional[str], typer.Option(help="Generation backend.")] = None,
                       n: Annotated[int, typer.Option(help="How many variations.")] = 3) -> None:
    """Write variations of a campaign's copy; they start pending the advertiser's review."""
    from townsquare.ads.creative import CopyWriter
    from townsquare.ads.sensitive import SensitiveDetector
    from townsquare.ads.taxonomy import INTERESTS
    from townsquare.llm import BackendError
    from townsquare.services.summaries import get_llm
    settings = settings_of(ctx, home)
    store = _campaigns(settings)
    c = store.get(campaign)
    if c is None:
        fail(f"no campaign {campaign!r}")
    try:
        writer = CopyWriter(get_llm(settings, backend), detector=SensitiveDetector())
    except BackendError as e:
        fail(str(e))
    show = lang or c.languages()[0]
    hooks = [None] + [INTERESTS[i].labels.get(show, INTERESTS[i].name)
                      for i in c.targeting.interests if i in INTERESTS]
    for k in range(max(1, n)):
        copy = writer.write(c, show, hooks[k % len(hooks)])
        cid = store.add_creative(c.id, copy.lang, copy.text, copy.origin)
        out.print(f"creative {cid} ({copy.origin}, pending): {copy.text}", highlight=False)


def _review(creative_id: int, status: str, settings: Settings) -> None:
    if not _campaigns(settings).review(creative_id, status):
        fail(f"no creative {creative_id}")
    out.print(f"creative {creative_id} {status}")


@creatives_app.command("approve")
def creatives_approve(ctx: typer.Context, creative_id: int, home: Home = None) -> None:
    """Approve a creative."""
    _review(creative_id, "approved", settings_of(ctx, home))


@creatives_app.command("reject")
def creatives_reject(ctx: typer.Context, creative_id: int, home: Home = None) -> None:
    """Reject a creative."""
    _review(creative_id, "rejected", settings_of(ctx, home))


@ads_app.command("serve")
def ads_serve(ctx: typer.Context,
              user: Annotated[str, typer.Argument(help="An author handle or id.")],
              home: Home = None,
              context: Annotated[Optional[str], typer.Option(help="A search query (else the timeline).")] = None,
              backend: Annotated[Optional[str], typer.Option(
                  help="Copy backend: extractive (the default: the campaign's template copy) or "
                       "local (generated, checked; the template when it fails).")] = None,
              json_out: Json = False) -> None:
    """Choose an ad for USER, write its copy, record the impression, and say why."""
    from townsquare.ads.serving import build_ad_server
    from townsquare.llm import BackendError
    from townsquare.services.indexes import build_engine, embedder_for
    from townsquare.services.summaries import get_llm
    settings = settings_of(ctx, home)
    try:
        llm = get_llm(settings, backend)
    except BackendError as e:
        fail(str(e))
    with store_of(settings) as store:
        engine = build_engine(store, settings)
        server = build_ad_server(store, settings.home, backend=llm, engine=engine,
                                 embedder=engine.embedder or embedder_for(store, settings))
        d = server.run(user, context=context)
    if d is None:
        if json_out:
            print_json(None)
        else:
            out.print("no eligible campaign (load some: townsquare ads campaigns load --demo)")
        raise typer.Exit(0 if d is None and json_out else 1)
    if json_out:
        print_json(d.to_dict())
        return
    out.print(f"[bold]{d.copy}[/]", highlight=False)
    out.print(f"campaign {d.campaign_id} ({d.advertiser}); copy: {d.copy_origin}; "
              f"{'personalized' if d.personalized else 'not personalized'}; impression "
              f"{d.impression_id}", highlight=False)
    out.print(f"why: {d.why}", highlight=False)


@ads_app.command("why")
def ads_why(ctx: typer.Context, impression: int, home: Home = None,
            json_out: Json = False) -> None:
    """Why an impression was shown, in plain words, with the signals that chose it."""
    imp = _campaigns(settings_of(ctx, home)).impression(impression)
    if imp is None:
        fail(f"no impression {impression}")
    if json_out:
        print_json(imp)
        return
    out.print(imp["why"], highlight=False)
    for s in imp["signals"]:
        out.print(f"  - {s}", highlight=False)


@ads_app.command("minor")
def ads_minor(ctx: typer.Context, user: str, home: Home = None,
              unset: Annotated[bool, typer.Option("--unset", help="Not a minor after all.")] = False
              ) -> None:
    """Mark a user known to be a minor: their profile is deleted and never built again."""
    from townsquare.ads.profiles import ProfileStore
    from townsquare.ads.serving import ADS_DB
    ProfileStore(settings_of(ctx, home).home / ADS_DB).set_minor(user, not unset)
    out.print(f"{user}: {'not ' if unset else ''}a minor")


@safety_app.command("train")
def safety_train(ctx: typer.Context, home: Home = None,
                 data: Annotated[Path, typer.Option(help="The datasets folder.")] = Path("../shared/data")
                 ) -> None:
    """Train the brand-safety classifier (offensive, hateful, crisis) and save it in the home."""
    from townsquare.ads.safety import train_from_data
    from townsquare.ads.serving import SAFETY_MODEL
    try:
        model = train_from_data(data)
    except (FileNotFoundError, ValueError) as e:
        fail(str(e))
    path = settings_of(ctx, home).home / SAFETY_MODEL
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    out.print(f"saved {path}")


@app.command()
def profile(ctx: typer.Context,
            user: Annotated[str, typer.Argument(help="An author handle or id.")],
            home: Home = None,
            delete: Annotated[bool, typer.Option("--delete", help="Delete the profile.")] = False,
            json_out: Json = False) -> None:
    """What the ads know about a user (interests, languages, why), or delete it."""
    from townsquare.ads.profiles import ProfileStore
    from townsquare.ads.serving import ADS_DB, build_ad_server
    from townsquare.services.errors import InputError
    from townsquare.services.indexes import embedder_for
    from townsquare.services.privacy import profile_view
    settings = settings_of(ctx, home)
    folder = settings.home
    if delete:
        gone = ProfileStore(folder / ADS_DB).delete(user)
        out.print(f"profile of {user} " + ("deleted" if gone else "did not exist") +
                  " (it is rebuilt from public posts only if ads are served to them again; "
                  "`townsquare optout USER` stops that)")
        return
    with store_of(settings) as store:
        server = build_ad_server(store, folder, embedder=embedder_for(store, settings))
        try:
            d = profile_view(server, user)
        except InputError as e:
            fail(f"{e.field}: {e}")
    if json_out:
        print_json(d)
        return
    p = d["profile"]
    if p is None:
        out.print(f"no profile for {user}: {d['message']}", highlight=False)
        return
    out.print(f"[bold]{user}[/]: interests " + ", ".join(
        f"{t['label']} ({t['id']}) {t['weight']:.2f}" for t in d["topics"][:8]), highlight=False)
    out.print(f"languages {p['languages']}; location {p.get('location') or '-'}", highlight=False)
    for s in p.get("signals", []):
        out.print(f"  - {s}", highlight=False)

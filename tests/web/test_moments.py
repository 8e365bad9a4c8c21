"""The "What's happening" column at any moment, in a real browser, on a store whose posts are all
from 2012-2013 (``tests/archive_stream.py``): the page lists stories on load although the latest
post is weeks after the last story (the server falls back, and the page says so), and picking
another time, in the picker or on the story timeline, changes the list to that moment's stories.

Uses the Chromium, Playwright fixtures and server helper of ``test_browser.py`` (skips as it
does); screenshots go to ``test-artifacts/browser/moments/``.
"""
from __future__ import annotations

import pytest

from tests.archive_stream import write
from tests.web.test_browser import ARTIFACTS, _api, _run, _serve, browser, expect, page  # noqa: F401

pytestmark = pytest.mark.slow
SHOTS = ARTIFACTS / "moments"


@pytest.fixture(scope="module")
def archive_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("web-archive")
    _run("ingest", str(write(tmp / "archive.jsonl")), "--home", str(tmp / "home"))
    with _serve(tmp / "home", "--no-auth") as base:
        yield base


def _shown_ids(pg) -> list[str]:
    return pg.locator("#stories .story").evaluate_all("els => els.map(e => e.dataset.storyId)")


def _expect_ids(pg, ids: list[str]) -> None:
    expect(pg.locator("#stories .story")).to_have_count(len(ids))
    for i, sid in enumerate(ids):
        expect(pg.locator("#stories .story").nth(i)).to_have_attribute("data-story-id", sid)


def test_a_2013_store_shows_stories_and_any_moment_can_be_picked(archive_server, page):
    SHOTS.mkdir(parents=True, exist_ok=True)
    base = archive_server

    # 1. Load: "now" holds nothing, so the server falls back and the page says so.
    page.goto(base + "/")
    expect(page.locator("#stories .story").first).to_be_visible()
    now = _api(base, "/v1/stories?limit=10")
    assert now["stories"] and now["fallback"], now
    _expect_ids(page, [s["id"] for s in now["stories"]])
    expect(page.locator("#moment-fallback")).to_be_visible()
    expect(page.locator("#moment-fallback")).to_have_attribute("data-at", now["fallback"]["at"])
    expect(page.locator("#stories-status")).to_have_text("")
    expect(page.locator("#trends .trend").first).to_be_visible()      # trends fell back too
    expect(page.locator("#timeline .tl-hit").first).to_be_attached()
    page.screenshot(path=str(SHOTS / "01-now-fallback.png"), full_page=True)

    # 2. The picker: the storm of October 2012.
    page.fill("#at-input", "2012-10-30T12:00")
    page.click("#at-go")
    storm = _api(base, "/v1/stories?limit=10&at=2012-10-30T12:00:00Z")["stories"]
    assert storm and {s["id"] for s in storm}.isdisjoint(s["id"] for s in now["stories"])
    _expect_ids(page, [s["id"] for s in storm])
    expect(page.locator("#moment-fallback")).to_be_hidden()
    expect(page.locator("#moment-shown")).to_contain_text("2012-10-30 12:00 UTC")
    assert "harborview" in storm[0]["top_terms"]
    assert "at=2012-10-30T12%3A00%3A00.000Z" in page.url or "at=2012-10-30T12:00:00.000Z" in page.url
    page.screenshot(path=str(SHOTS / "02-picked.png"), full_page=True)

    # 3. The timeline: a click on April 2013 looks at the explosion's busiest hour.
    hits = page.locator("#timeline .tl-hit")
    marks = hits.evaluate_all("els => els.map(e => [e.dataset.at, Number(e.dataset.count)])")
    april = max((m for m in marks if m[0].startswith("2013-04")), key=lambda m: m[1])
    assert april[1] > 0, marks
    page.locator(f"#timeline .tl-hit[data-at='{april[0]}']").click()
    blast = _api(base, f"/v1/stories?limit=10&at={april[0]}")["stories"]
    assert blast and all("kestrel" in s["top_terms"] for s in blast)
    _expect_ids(page, [s["id"] for s in blast])
    expect(page.locator("#at-input")).to_have_value(april[0][:16])
    expect(page.locator("#timeline .tl-marker")).to_be_attached()
    page.screenshot(path=str(SHOTS / "03-timeline.png"), full_page=True)

    # 4. A quiet moment says so; "Now" goes back to the latest stories.
    page.fill("#at-input", "2013-05-05T00:00")
    page.click("#at-go")
    expect(page.locator("#stories .story")).to_have_count(0)
    expect(page.locator("#stories-status")).not_to_be_empty()
    page.click("#at-now")
    _expect_ids(page, [s["id"] for s in now["stories"]])
    expect(page.locator("#moment-fallback")).to_be_visible()
    assert "at=" not in page.url

    # 5. The address keeps the moment: a fresh load of ?at=... shows the storm again.
    page.goto(base + "/?at=2012-10-30T12:00:00.000Z")
    _expect_ids(page, [s["id"] for s in storm])
    expect(page.locator("#at-input")).to_have_value("2012-10-30T12:00")
    assert page.errors == [], page.errors

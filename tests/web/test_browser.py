"""The web page in a real browser (headless Chromium driven by Playwright) against the real server.

A small invented stream (three events, a dozen authors, a few hours) is ingested into a fresh
home, ``townsquare serve`` runs on a free port with ``--no-auth --backend extractive``, and one
walk-through checks the page end to end: search, the "What's happening" column, a story's
summary with citations, the citation opening the cited post (and the shareable ``#/post/<id>``
route), the volume chart, and a streamed chat answer that cites a real post. Screenshots of
every step go to ``test-artifacts/browser/``.

Skips when Chromium (``/usr/bin/chromium`` or ``$CHROMIUM``) or the playwright package is absent.
Never run ``playwright install``: the system Chromium is used as is.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
if not Path(CHROMIUM).is_file():
    pytest.skip(f"no Chromium at {CHROMIUM} (set $CHROMIUM to its path)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api",
                               reason="the playwright package is not installed")
expect = sync_api.expect

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "browser"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SERVER_START_S = 180        # first start may build indexes; generous on 2 shared cores
UI_TIMEOUT_MS = 30_000      # for expect(): the first summary or search may load indexes

pytestmark = pytest.mark.slow

# ---------------------------------------------------------------------------------------------
# The invented stream: three events in an invented town, each told by several authors in several
# wordings so that the story clusterer groups them. No real post text is used.

BASE_ID = 1790000000000000000
START = datetime(2024, 3, 14, 7, 0, tzinfo=UTC)
AUTHORS = ["millbrookwx", "alderstreetann", "kestrelpta", "quarryhillops", "riverwatchtom",
           "harborlanterns", "cityhallmillbrook", "nightbusnina", "gridfixer", "localreporterjo",
           "bakerymarta", "cyclistdev"]
EVENTS = {
    "flood": (0, [   # starts at 07:00
        "The Millbrook river flood has reached Alder Street, water over the footbridge",
        "Alder Street footbridge closed as the Millbrook river flood keeps rising",
        "Millbrook river flood: sandbags handed out at Kestrel school on Alder Street",
        "Kestrel school opens as a shelter for families leaving the Millbrook river flood",
        "Flood water from the Millbrook river now covers the Alder Street car park",
        "Millbrook river flood update: the footbridge on Alder Street is under water",
        "Volunteers fill sandbags at Kestrel school as the Millbrook river flood spreads",
        "Alder Street shops closed, Millbrook river flood water at the door",
        "Millbrook river flood: rescue boats on Alder Street, the footbridge is gone",
        "River level in Millbrook still rising, flood shelter at Kestrel school is full",
        # Markup in a post is text: the page must show it as typed and never run it.
        "Millbrook river flood <img src=x onerror=alert(1)> footbridge <b>photo</b> on Alder St",
    ]),
    "outage": (1, [  # starts at 08:00
        "Power outage across Quarry Hill after the substation transformer failed",
        "Quarry Hill substation transformer fire, power outage for thousands of homes",
        "No power on Quarry Hill since the substation transformer blew, traffic lights dark",
        "Grid crews at the Quarry Hill substation replace the burnt transformer, outage goes on",
        "Quarry Hill power outage: the substation transformer will take hours to replace",
        "Traffic lights out on Quarry Hill, power outage from the substation transformer",
        "Quarry Hill outage map shows the whole hill dark after the substation transformer fire",
        "Power back on for half of Quarry Hill, substation transformer work goes on",
        "Quarry Hill substation transformer replaced, the power outage is nearly over",
        "Bakery on Quarry Hill closed by the power outage, substation transformer blamed",
    ]),
    "lanterns": (2, [  # starts at 09:00
        "Harbor lantern parade tonight, paper lanterns on the quay at dusk",
        "Paper lanterns ready for the harbor lantern parade along the quay",
        "The harbor lantern parade route runs along the quay to the lighthouse",
        "Children painting paper lanterns for the harbor lantern parade at the quay",
        "Harbor lantern parade on the quay goes ahead despite the wind",
        "Thousands of paper lanterns float past the lighthouse at the harbor lantern parade",
        "Best photos of the harbor lantern parade on the quay tonight",
        "Harbor lantern parade: the quay is packed, lanterns glowing by the lighthouse",
        "Quay bakery selling lantern cookies for the harbor lantern parade",
        "Harbor lantern parade ends at the lighthouse, paper lanterns everywhere on the quay",
    ]),
}
SUFFIXES = ["", " Stay safe.", " More soon.", " Photos in the replies.", " Pass it on.", " Wow."]


def build_posts() -> list[dict]:
    """62 v2 tweet objects: each event's lines twice, from different authors, over hours."""
    posts = []
    n = 0
    for offset_h, lines in EVENTS.values():
        for rep in range(2):
            for i, line in enumerate(lines):
                author = AUTHORS[(i * 5 + rep * 7 + offset_h * 3) % len(AUTHORS)]
                t = START + timedelta(hours=offset_h, minutes=13 * i + 61 * rep + 7 * offset_h)
                posts.append({
                    "id": str(BASE_ID + n * 1000),
                    "text": line + "." + SUFFIXES[(i + rep) % len(SUFFIXES)],
                    "created_at": t.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                    "author_id": str(100 + AUTHORS.index(author)),
                    "lang": "en",
                })
                n += 1
    return posts


def write_jsonl(posts: list[dict], path: Path) -> None:
    """One v2 response page per line: the tweet in ``data`` and its author in
    ``includes.users``, so that posts carry handles."""
    with open(path, "w", encoding="utf-8") as f:
        for p in posts:
            user = {"id": p["author_id"], "username": AUTHORS[int(p["author_id"]) - 100],
                    "name": AUTHORS[int(p["author_id"]) - 100].title()}
            f.write(json.dumps({"data": p, "includes": {"users": [user]}}) + "\n")


# ---------------------------------------------------------------------------------------------
# The server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


@pytest.fixture(scope="module")
def posts() -> dict[str, dict]:
    return {p["id"]: p for p in build_posts()}


def _run(*args: str) -> str:
    r = subprocess.run([sys.executable, "-m", "townsquare", *args], capture_output=True, text=True,
                       check=False, timeout=300, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    assert r.returncode == 0, f"townsquare {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}"
    return r.stdout


def _ingested_home(tmp: Path, posts: dict[str, dict]) -> Path:
    home = tmp / "home"
    data = tmp / "posts.jsonl"
    write_jsonl(list(posts.values()), data)
    _run("ingest", str(data), "--home", str(home))
    return home


@contextmanager
def _serve(home: Path, *flags: str):
    """``townsquare serve`` on a free port until /health answers 200; yields its base URL."""
    port = _free_port()
    log = home.parent / f"server-{port}.log"
    with open(log, "wb") as logf:
        proc = subprocess.Popen(
            [sys.executable, "-m", "townsquare", "serve", "--home", str(home), "--port", str(port),
             "--backend", "extractive", *flags],
            stdout=logf, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the server exited with {proc.returncode}:\n{_tail(log)}")
            try:
                if _get(base + "/health", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"no 200 from /health after {SERVER_START_S} s:\n{_tail(log)}")
            time.sleep(0.25)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory, posts):
    """The invented stream behind a server without keys (``--no-auth``)."""
    home = _ingested_home(tmp_path_factory.mktemp("web"), posts)
    with _serve(home, "--no-auth") as base:
        yield base


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory, posts):
    """The same stream behind a server that requires keys; yields (base URL, a read key)."""
    home = _ingested_home(tmp_path_factory.mktemp("web-auth"), posts)
    key = _run("keys", "create", "--scope", "read", "--name", "browser-test",
               "--home", str(home)).strip().splitlines()[-1].strip()
    with _serve(home) as base:
        yield base, key


# ---------------------------------------------------------------------------------------------
# The browser


class _ShotsReport:
    """Names the screenshots' folder in pytest's terminal summary (shown even when pytest
    captures output)."""

    def pytest_terminal_summary(self, terminalreporter):
        terminalreporter.write_line(f"browser screenshots: {ARTIFACTS}")


@pytest.fixture(scope="module")
def artifacts(request) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    plugins = request.config.pluginmanager
    if not plugins.has_plugin("townsquare-browser-shots"):
        plugins.register(_ShotsReport(), "townsquare-browser-shots")
    return ARTIFACTS


@pytest.fixture(scope="module")
def browser():
    # Chromium's profile (made in the driver's temporary folder) holds a Unix socket, whose path
    # must stay under ~107 bytes: a long $TMPDIR (a CI runner's) would stop the browser at launch.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TMPDIR", "/tmp")
        with sync_api.sync_playwright() as pw:
            b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            expect.set_options(timeout=UI_TIMEOUT_MS)
            yield b
            b.close()


@pytest.fixture
def page(browser):
    """A fresh 1280x800 page that records script errors and console errors."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    pg = context.new_page()
    pg.set_default_timeout(UI_TIMEOUT_MS)
    pg.errors = []
    pg.requested = []
    pg.on("request", lambda r: pg.requested.append(r.url))
    pg.on("pageerror", lambda e: pg.errors.append(f"pageerror: {e}"))
    pg.on("console", lambda m: pg.errors.append(f"console.{m.type}: {m.text}")
          if m.type == "error" else None)
    pg.on("dialog", lambda d: (pg.errors.append(f"dialog: {d.message}"), d.dismiss()))
    yield pg
    context.close()


def _api(base: str, path: str) -> dict:
    status, body = _get(base + path, timeout=60)
    assert status == 200, f"GET {path}: {status} {body[:300]!r}"
    return json.loads(body)


def test_page_end_to_end(server, page, posts, artifacts):
    shots = iter(range(1, 100))

    def shot(name: str) -> None:
        page.screenshot(path=str(artifacts / f"{next(shots):02d}-{name}.png"), full_page=True)

    # 1. Load: no key field without auth; the stories column fills from /v1/stories.
    page.goto(server + "/")
    expect(page).to_have_title("townsquare")
    expect(page.locator("#auth")).to_be_hidden()
    expect(page.locator(".story").first).to_be_visible()
    stories = _api(server, "/v1/stories?limit=10")["stories"]
    assert stories, "the invented stream formed no story"
    expect(page.locator(".story")).to_have_count(len(stories))
    shot("home")

    # 2. Search: results are the ingested posts, with their text, author and id.
    page.fill("#search-input", "footbridge")
    page.click("#search-button")
    results = page.locator("#results .result")
    expect(results.first).to_be_visible()
    expect(page.locator("#search-error")).to_be_hidden()
    ids = results.evaluate_all("els => els.map(e => e.dataset.postId)")
    assert len(ids) >= 2 and set(ids) <= set(posts), ids
    for pid in ids:
        assert "footbridge" in posts[pid]["text"].lower()
    shown = results.locator(".post-text").all_inner_texts()
    assert shown == [posts[pid]["text"] for pid in ids]
    assert any("<img src=x" in t for t in shown), shown      # markup shown as text ...
    expect(page.locator("#results img, #results b")).to_have_count(0)   # ... not as elements
    first = results.first
    expect(first.locator(".post-text")).to_have_text(posts[ids[0]]["text"])
    expect(first.locator(".post-id")).to_have_text(ids[0])
    author = AUTHORS[int(posts[ids[0]]["author_id"]) - 100]
    expect(first.locator(".author")).to_contain_text(author)
    shot("search")
    page.fill("#search-input", "zeppelinxyzzy")
    page.click("#search-button")
    expect(page.locator("#search-status")).to_have_text("No results.")
    expect(results).to_have_count(0)

    # 3. A story from the column: summary sentences with citation links into the story.
    story = stories[0]
    sid = str(story["id"])
    detail = _api(server, f"/v1/stories/{sid}")
    story_posts = set(detail["post_ids"])
    page.click(f".story[data-story-id='{sid}']")
    expect(page.locator("#story-detail")).to_be_visible()
    expect(page.locator(".summary-sentence").first).to_be_visible()
    expect(page.locator("#summary-error")).to_be_hidden()
    expect(page.locator("#summary-headline")).not_to_be_empty()
    cites = page.locator("#summary-sentences a.citation")
    expect(cites.first).to_be_visible()
    cited = cites.evaluate_all("els => els.map(e => e.dataset.postId)")
    assert set(cited) <= story_posts, (cited, sorted(story_posts))
    expect(cites.first).to_have_text("[1]")

    # 4. The chart: one bar per interval, counts adding up to the story's timeline.
    bars = page.locator("#story-chart rect.bar")
    expect(bars.first).to_be_attached()
    counts = bars.evaluate_all("els => els.map(e => Number(e.dataset.count))")
    timeline = detail["timeline"]
    assert sum(counts) == sum(n for _, n in timeline) and max(counts) == max(n for _, n in timeline)
    expect(page.locator("#story-chart .chart-max")).to_have_text(str(max(counts)))
    expect(bars.first.locator("title")).to_contain_text("post")
    shot("story")

    # 5. A citation opens the post it cites, by id, with that post's text.
    target = cited[0]
    cites.first.click()
    expect(page.locator("#post-view")).to_be_visible()
    expect(page.locator("#post-view-id")).to_have_text(target)
    expect(page.locator("#post-view-text")).to_have_text(posts[target]["text"])
    assert page.evaluate("location.hash") == f"#/post/{target}"
    shot("citation-post")
    page.keyboard.press("Escape")
    expect(page.locator("#post-view")).to_be_hidden()

    # 6. Chat: a streamed answer to a natural question, citing real posts that open them.
    page.fill("#chat-input", "What is happening with the Millbrook river flood?")
    page.click("#chat-send")
    answer = page.locator(".chat-message.assistant").last
    expect(answer).to_be_visible()
    expect(answer).not_to_contain_class("pending")        # the stream ended
    expect(answer.locator(".chat-error")).to_have_count(0)
    text = answer.locator(".content").inner_text().strip()
    assert text and text != "(no answer)" and "I found no posts" not in text, text
    inline = answer.locator(".content a.citation")        # [n] markers in the answer, as links
    expect(inline.first).to_be_visible()
    listed = answer.locator(".chat-citations a.citation")   # the sources under the answer
    expect(listed.first).to_be_visible()
    chat_ids = answer.locator("a.citation").evaluate_all("els => els.map(e => e.dataset.postId)")
    assert set(chat_ids) <= set(posts), chat_ids
    shot("chat")
    inline.first.click()
    expect(page.locator("#post-view-id")).to_have_text(chat_ids[0])
    expect(page.locator("#post-view-text")).to_have_text(posts[chat_ids[0]]["text"])
    shot("chat-citation-post")

    # 7. The route is shareable: a fresh load of #/post/<id> opens that post.
    page.goto(server + f"/#/post/{target}")
    page.reload()
    expect(page.locator("#post-view-text")).to_have_text(posts[target]["text"])
    expect(page.locator("#post-view-author")).to_contain_text(
        AUTHORS[int(posts[target]["author_id"]) - 100])
    shot("shared-route")

    assert page.errors == [], page.errors
    # Nothing fetched from anywhere but the server: no CDN, font or analytics URL.
    assert [u for u in page.requested if not u.startswith((server + "/", "data:"))] == []


def test_errors_from_the_api_are_shown(server, page, artifacts):
    page.goto(server + "/#/post/1")
    expect(page.locator("#post-view-error")).to_be_visible()    # a post that does not exist
    page.keyboard.press("Escape")
    page.fill("#search-input", "flood frm:bob")          # an unknown operator: a 400
    page.click("#search-button")
    expect(page.locator("#search-error")).to_be_visible()
    expect(page.locator("#search-error")).not_to_be_empty()
    page.screenshot(path=str(artifacts / "90-errors.png"), full_page=True)
    # 404/400 responses log "Failed to load resource" in the console: expected here; nothing else.
    assert [e for e in page.errors if "Failed to load resource" not in e] == []


def test_api_key_is_asked_for_saved_and_sent(auth_server, page, artifacts):
    base, key = auth_server
    page.goto(base + "/")
    expect(page.locator("#api-key")).to_be_visible()
    expect(page.locator("#stories-error")).to_contain_text("API key")   # 401: no key yet
    sent = []
    page.on("request", lambda r: sent.append((r.url, r.headers.get("authorization")))
            if "/v1/" in r.url else None)
    page.fill("#api-key", key)
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".story").first).to_be_visible()
    expect(page.locator("#stories-error")).to_be_hidden()
    page.fill("#search-input", "lantern")
    page.click("#search-button")
    expect(page.locator("#results .result").first).to_be_visible()
    page.screenshot(path=str(artifacts / "80-auth.png"), full_page=True)
    assert sent and all(h == f"Bearer {key}" for _, h in sent), sent
    page.reload()                                   # the key is kept in localStorage
    expect(page.locator("#api-key")).to_have_value(key)
    expect(page.locator(".story").first).to_be_visible()
    assert [e for e in page.errors if "Failed to load resource" not in e] == []

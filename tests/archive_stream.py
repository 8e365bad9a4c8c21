"""An invented archive of 2012-2013 crisis posts, for the "any moment" tests (CLI, API, web).

Four events in invented places, each a two-day burst by many authors followed by a sparse tail
of a few posts every other day for weeks, as real crisis collections end: the latest post is
weeks after the last story, so "the last hour" and "the stories active now" are both empty and
the views must fall back to the most recent active period. No real post text is used.

    >>> posts = build()
    >>> len(posts), posts[0]["data"]["created_at"][:4], posts[-1]["data"]["created_at"][:7]
    (352, '2012', '2013-07')
"""
from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

BASE_ID = 1_790_000_000_000_000_000
EVENTS = {  # name: (start of the burst, its wordings)
    "storm": (datetime(2012, 10, 29, 12, tzinfo=UTC), [
        "Harborview storm surge floods the pier", "storm surge Harborview pier under water",
        "Harborview storm knocks out ferry service", "ferry cancelled Harborview storm surge",
        "Harborview pier storm damage photos"]),
    "blast": (datetime(2013, 4, 15, 18, tzinfo=UTC), [
        "explosion at the Kestrel plant, smoke over town", "Kestrel plant explosion injures workers",
        "smoke from Kestrel plant explosion closes highway", "Kestrel explosion firefighters at the plant",
        "plant explosion Kestrel evacuation ordered"]),
    "tornado": (datetime(2013, 5, 20, 20, tzinfo=UTC), [
        "tornado hits Alder valley school", "Alder valley tornado destroys homes",
        "tornado shelter open in Alder valley gym", "Alder valley tornado rescue teams search school",
        "tornado damage Alder valley roads blocked"]),
    "flood": (datetime(2013, 6, 21, 9, tzinfo=UTC), [
        "Quarry river flood reaches downtown", "downtown flooded as Quarry river rises",
        "Quarry river flood evacuation of downtown", "Quarry river flood shelters full",
        "bridges closed Quarry river flood downtown"]),
}
TAIL = ["thinking of everyone affected", "donate to the relief fund", "a month later, rebuilding",
        "anniversary plans announced", "still cleaning up after all this"]
BURST_POSTS, TAIL_POSTS, AUTHORS = 80, 8, 40


def build(seed: int = 7) -> list[dict]:
    """v2 response pages (``{"data", "includes"}``), events in time order, each event's posts in
    time order."""
    rng = random.Random(seed)
    out: list[dict] = []
    for k, (name, (start, lines)) in enumerate(EVENTS.items()):
        rows = [(start + timedelta(minutes=rng.randrange(48 * 60)), f"{rng.choice(lines)} #{name}")
                for _ in range(BURST_POSTS)]
        rows += [(start + timedelta(days=4 + 2 * i, minutes=rng.randrange(600)),
                  f"{rng.choice(TAIL)} {rng.choice(lines).split()[0]}") for i in range(TAIL_POSTS)]
        for n, (t, text) in enumerate(sorted(rows)):
            a = rng.randrange(AUTHORS)
            user = {"id": str(5000 + a), "username": f"{name}watch{a}", "name": f"Watcher {a}"}
            out.append({"data": {"id": str(BASE_ID + k * 10_000 + n), "text": text,
                                 "created_at": t.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                                 "author_id": user["id"], "lang": "en"},
                        "includes": {"users": [user]}})
    return out


def write(path: Path, seed: int = 7) -> Path:
    """The archive as one JSONL file of v2 pages; returns ``path``."""
    with open(path, "w", encoding="utf-8") as f:
        for page in build(seed):
            f.write(json.dumps(page) + "\n")
    return path


def latest_story_end() -> datetime:
    """The flood's last burst post is before this; its tail and the latest post come after."""
    return EVENTS["flood"][0] + timedelta(days=2)

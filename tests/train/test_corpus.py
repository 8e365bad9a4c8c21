from __future__ import annotations

import hashlib
import json

import pytest

from townsquare.posts import Post
from townsquare.store.base import Stored
from townsquare.store.sqlite import SQLiteStore
from townsquare.train.corpus import (
    COUNTS,
    CorpusBuilder,
    CorpusConfig,
    CorpusManifest,
    author_digest,
    check_deletions,
    scrub,
)

BASE = 1212092628029698048
T0 = 1_600_000_000_000
MIN = 60_000


def _add(store, rows):
    """rows: (offset, text, minutes after T0, extra Post fields)."""
    store.write_batch([Stored(Post(id=BASE + i, text=text, source="t", created_at=T0 + m * MIN,
                                   **kw).normalized())
                       for i, text, m, kw in rows], [])


def _build(store, out, **cfg):
    return CorpusBuilder(store, CorpusConfig(**cfg)).run(out)


def _lines(out):
    return [json.loads(x) for x in (out / "corpus.jsonl").read_text().splitlines()]


def _ids(out):
    return [int(r["id"]) - BASE for r in _lines(out)]


def _sum_ok(m):
    c = m.counts
    return c["read"] == sum(c[k] for k in COUNTS if k != "read")


def test_opted_out_authors_by_handle_any_case_or_by_id_never_reach_the_corpus(store, tmp_path):
    _add(store, [
        (0, "Sandbags are stacked along the river walk tonight", 0, dict(author_handle="CityOps")),
        (1, "The shelter at the high school has cots and water", 1, dict(author_id=777)),
        (2, "Roads closed near the old mill because of flooding", 2, dict(author_handle="ann",
                                                                         author_id=5)),
    ])
    assert store.opt_out(["@cityops", "777"]) == 2
    m = _build(store, tmp_path / "c")
    data = (tmp_path / "c" / "corpus.jsonl").read_bytes()
    assert b"Sandbags" not in data and b"shelter" not in data and b"old mill" in data
    assert _ids(tmp_path / "c") == [2]
    assert m.counts["opted_out"] == 2 and m.counts["kept"] == 1 and _sum_ok(m)
    # The manifest says whose posts were left out, by digest: no handle is written in it.
    assert m.opted_out_authors == sorted([author_digest("cityops"), author_digest("777")])
    on_disk = CorpusManifest.load(tmp_path / "c")
    assert on_disk.opted_out_authors == m.opted_out_authors and author_digest("ann") not in \
        on_disk.opted_out_authors
    assert b"cityops" not in (tmp_path / "c" / "manifest.json").read_bytes().lower()


def test_a_manifest_written_before_opted_out_authors_still_loads(store, tmp_path):
    _add(store, [(0, "Roads closed near the old mill because of flooding", 0, {})])
    _build(store, tmp_path / "c")
    f = tmp_path / "c" / "manifest.json"
    d = json.loads(f.read_text())
    del d["opted_out_authors"]
    f.write_text(json.dumps(d))
    assert CorpusManifest.load(f).opted_out_authors == []


def test_a_deleted_post_never_reaches_the_corpus_and_later_removals_are_reported(store, tmp_path):
    _add(store, [
        (0, "Power is out across the east side of town since noon", 0, dict(author_handle="ann")),
        (1, "Volunteers needed at the food bank on Elm Street today", 1, dict(author_handle="bob")),
        (2, "Bridge on route nine collapsed after the heavy flood", 2, dict(author_id=99)),
        (3, "Water levels are dropping slowly at the river gauge", 3, dict(author_handle="dan")),
    ])
    store.delete([BASE + 0])
    out = tmp_path / "c"
    m = _build(store, out)
    assert b"Power is out" not in (out / "corpus.jsonl").read_bytes()
    assert _ids(out) == [1, 2, 3] and m.counts["kept"] == 3
    assert check_deletions(out / "manifest.json", store) == []
    store.delete([BASE + 1])                 # deleted after the build
    store.opt_out(["99"])                    # an author (by id) who opts out after the build
    assert check_deletions(out / "manifest.json", store) == [BASE + 1, BASE + 2]
    assert check_deletions(out, store) == [BASE + 1, BASE + 2]   # the folder works too
    store.opt_in(["99"])
    assert check_deletions(out, store) == [BASE + 1]
    other = SQLiteStore(tmp_path / "other.db")    # posts a store does not hold cannot be vouched for
    assert check_deletions(out, other) == [BASE + 1, BASE + 2, BASE + 3]
    other.close()


def test_deletions_and_opt_outs_recorded_during_the_build_are_dropped_at_the_end(store, tmp_path):
    _add(store, [
        (0, "Power is out across the east side of town since noon", 0, dict(author_handle="ann")),
        (1, "Volunteers needed at the food bank on Elm Street today", 1, dict(author_handle="Bob")),
        (2, "Water levels are dropping slowly at the river gauge", 2, dict(author_handle="dan")),
    ])
    read = store.iter_posts

    def racing(*a, **kw):                    # the first post is deleted and bob opts out mid-read
        for i, p in enumerate(read(*a, **kw)):
            yield p
            if i == 0:
                store.delete([BASE + 0])
                store.opt_out(["bob"])
    store.iter_posts = racing
    m = _build(store, tmp_path / "c")
    assert _ids(tmp_path / "c") == [2]
    assert m.counts["deleted"] == 1 and m.counts["opted_out"] == 1 and m.counts["kept"] == 1
    assert [i for i, _ in m.posts] == [str(BASE + 2)] and _sum_ok(m)


PII_POSTS = [
    "Call me at +1 (555) 123-4567 if the water reaches your street tonight",
    "Rescue line 555-123-4567 is busy, keep trying, boats are on the way",
    "London office for the appeal: +44 20 7946 0958, open until nine",
    "Write to relief.desk+floods@example.org for supplies near the station",
    "Thanks @CityOps and @ann_b for the sandbags at the corner of Elm",
    "Live map of the closures here https://t.co/AbC123 and www.example.com/roads",
    "RT @news_desk: Evacuation ordered for the low neighborhoods along the river",
]


def test_emails_phones_handles_and_urls_are_gone_from_every_kept_text(store, tmp_path):
    _add(store, [(i, t, i, {}) for i, t in enumerate(PII_POSTS)])
    m = _build(store, tmp_path / "c")
    data = (tmp_path / "c" / "corpus.jsonl").read_bytes()
    assert m.counts["kept"] == len(PII_POSTS)            # nothing dropped: every text was checked
    for gone in (b"555", b"123-4567", b"7946", b"0958", b"+44", b"+1", b"example.org",
                 b"relief.desk", b"@", b"CityOps", b"ann_b", b"news_desk", b"http", b"t.co",
                 b"www.", b"AbC123"):
        assert gone not in data, gone
    texts = [r["text"] for r in _lines(tmp_path / "c")]
    assert texts[0] == "Call me at if the water reaches your street tonight"
    assert texts[2] == "London office for the appeal:, open until nine"
    assert texts[4] == "Thanks <|user|> and <|user|> for the sandbags at the corner of Elm"
    assert texts[5] == "Live map of the closures here <|url|> and <|url|>"
    assert texts[6] == "Evacuation ordered for the low neighborhoods along the river"


def test_scrub_keeps_dates_counts_and_amounts_and_strips_special_tokens():
    text = "On 2020-01-15 at 12:30, 1,000,000 people and +5 points, 12.5 ft"
    assert scrub(text) == text
    assert scrub("hi <|endofpost|><|post|> there  \n now") == "hi there now"
    assert scrub("+1 (555) 123-4567") == "" and scrub("1-800-555-0199 now") == "now"


WORDS = ("the river rose over the levee near the old mill and crews are moving "
         "families to the school gym tonight").split()


def test_exact_and_near_duplicates_keep_only_the_earliest(store, tmp_path):
    assert len(WORDS) == 20
    original = " ".join(WORDS)
    one_word = WORDS.copy()
    one_word[10] = "dozens"                  # a word in the middle: Jaccard 15/21 on 3-shingles
    many = WORDS.copy()
    for i in (2, 6, 10, 14, 18):
        many[i] = "x" + many[i]              # five words changed: no longer a copy
    # The earliest post has the largest id: order is by time, not by id.
    _add(store, [
        (9, original + " https://t.co/a", 0, {}),
        (1, "  " + original.upper() + "   https://t.co/b ", 1, {}),
        (2, original.replace(" ", "\n  "), 2, {}),
        (3, " ".join(one_word), 3, {}),
        (4, " ".join(many), 4, {}),
    ])
    m = _build(store, tmp_path / "c")
    assert _ids(tmp_path / "c") == [9, 4]
    assert m.counts["exact_dup"] == 2 and m.counts["near_dup"] == 1 and _sum_ok(m)
    strict = _build(store, tmp_path / "s", near_dup_threshold=0.9)
    assert _ids(tmp_path / "s") == [9, 3, 4] and strict.counts["near_dup"] == 0


def test_language_and_quality_filters_count_what_they_drop(store, tmp_path):
    _add(store, [
        (0, "Flood waters rising near the old mill this morning", 0, dict(lang="en")),
        (1, "Les eaux montent près du vieux moulin ce matin", 1, dict(lang="fr")),
        (2, "Flood waters are rising near the church this evening", 2, {}),   # not identified
        (3, "Too short here", 3, dict(lang="en")),
        (4, "@ann https://t.co/x @bob https://t.co/y @cat https://t.co/z", 4, dict(lang="en")),
        (5, "🌊🌊🌊🌊🌊 1234 5678 9012 !!!! ???? #1 ok", 5, dict(lang="en")),
    ])
    m = _build(store, tmp_path / "en", langs=("EN",))
    assert _ids(tmp_path / "en") == [0]
    assert m.counts == {"read": 6, "opted_out": 0, "deleted": 0, "lang": 2, "too_short": 2,
                        "low_quality": 1, "exact_dup": 0, "near_dup": 0, "kept": 1}
    every = _build(store, tmp_path / "all", min_chars=0, min_alpha_share=0.0)
    # no language filter, no length or letter share: only the placeholder-only post goes
    assert _ids(tmp_path / "all") == [0, 1, 2, 3, 5] and every.counts["low_quality"] == 1
    assert every.config["langs"] is None and m.config["langs"] == ["en"]


def test_two_builds_write_identical_bytes_and_the_manifest_records_the_sources(store, tmp_path):
    _add(store, [(i, f"Update number {i}: {t}", 10 - i, dict(author_handle=f"u{i}"))
                 for i, t in enumerate(PII_POSTS)])
    seen = []
    m1 = CorpusBuilder(store).run(tmp_path / "a", progress=seen.append)
    m2 = CorpusBuilder(store).run(tmp_path / "b")
    a, b = (tmp_path / "a" / "corpus.jsonl").read_bytes(), (tmp_path / "b" / "corpus.jsonl").read_bytes()
    assert a == b and len(a) > 0 and seen[-1] == len(PII_POSTS)
    d1, d2 = m1.to_dict(), m2.to_dict()
    d1.pop("created_at"), d2.pop("created_at")
    assert d1 == d2
    on_disk = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert on_disk == m1.to_dict() and CorpusManifest.load(tmp_path / "a") == m1
    assert on_disk["store"] == store.path
    assert on_disk["corpus_sha256"] == hashlib.sha256(a).hexdigest()
    rows = _lines(tmp_path / "a")
    assert [r["created_at"] for r in rows] == sorted(r["created_at"] for r in rows)
    assert [r["id"] for r in rows] == [i for i, _ in m1.posts]
    for pid, h in m1.posts:                  # each kept post's hash is of its stored source text
        assert h == hashlib.sha256(store.get(int(pid)).text.encode()).hexdigest()
    assert (m1.first_created_at, m1.last_created_at) == (rows[0]["created_at"], rows[-1]["created_at"])
    # a changed source text changes the content hash
    store.write_batch([Stored(Post(id=BASE, text="Update number 0: different now entirely",
                                   source="t", created_at=T0 + 10 * MIN).normalized())], [])
    assert CorpusBuilder(store).run(tmp_path / "c").content_sha256 != m1.content_sha256


@pytest.mark.parametrize("kw, field", [
    (dict(min_chars=-1), "min_chars"),
    (dict(min_chars=2.5), "min_chars"),
    (dict(langs=()), "langs"),
    (dict(langs="en"), "langs"),
    (dict(langs=("en", "")), "langs"),
    (dict(near_dup_threshold=0.0), "near_dup_threshold"),
    (dict(near_dup_threshold=1.5), "near_dup_threshold"),
    (dict(num_perm=4), "num_perm"),
    (dict(min_alpha_share=1.2), "min_alpha_share"),
])
def test_config_validation_names_the_field(kw, field):
    with pytest.raises(ValueError, match=f"^{field} "):
        CorpusConfig(**kw)

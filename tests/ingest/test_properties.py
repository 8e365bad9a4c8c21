"""Issue 17, fault suite: property tests of every reader (v1, v2, X archive, JSON Lines, JSON
array, CSV/TSV) through the whole pipeline (read, normalize, store).

For any input: nothing raises out of the pipeline, and every record the reader yields is posts or
a reason (an ``Item`` with neither would be a record lost without a word). For a valid post among
garbage records: it is stored. Kept quick (a few seconds in all): ``max_examples`` is modest and
each example runs on an in-memory store."""
from __future__ import annotations

import json
import tempfile
from itertools import count
from pathlib import Path

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from townsquare.ingest.detect import reader_for
from townsquare.ingest.pipeline import IngestPipeline
from townsquare.store.sqlite import SQLiteStore

GOOD_ID = 1212092628029698048
GOOD_TEXT = "the river broke its banks downtown"
FOLDER = Path(tempfile.mkdtemp(prefix="townsquare-properties-"))
_names = count()

PROPERTIES = settings(max_examples=40, deadline=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# JSON values, with what breaks readers: numbers past 64 bits and past a float, deep nesting,
# strings of any code point, the keys tweets have.
V1_KEYS = ["id", "id_str", "text", "full_text", "created_at", "user", "entities", "lang",
           "extended_tweet", "extended_entities", "retweeted_status", "quoted_status",
           "quoted_status_id_str", "in_reply_to_status_id_str", "coordinates", "retweet_count",
           "favorite_count", "reply_count", "quote_count", "statuses", "screen_name",
           "hashtags", "urls", "user_mentions", "symbols", "media"]
V2_KEYS = ["id", "text", "data", "includes", "users", "tweets", "author_id", "username", "name",
           "created_at", "lang", "note_tweet", "entities", "referenced_tweets", "type",
           "public_metrics", "like_count", "geo", "coordinates", "conversation_id",
           "in_reply_to_user_id", "attachments", "media_keys", "tag", "expanded_url"]
SCALARS = (st.none() | st.booleans() | st.floats() | st.text(max_size=30)
           | st.integers(min_value=-(1 << 70), max_value=1 << 70)
           | st.sampled_from(["1e30", "2019-12-31T18:30:00Z", "Tue Dec 31 18:30:00 +0000 2019",
                              "²", str(GOOD_ID), "-1", "NaN", ""]))


def json_values(keys: list[str]) -> st.SearchStrategy:
    return st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.sampled_from(keys) | st.text(max_size=5), inner,
                                          max_size=6), max_leaves=25)


ANY_V1, ANY_V2 = json_values(V1_KEYS), json_values(V2_KEYS)


def dumps(value) -> str:
    """JSON text of ``value`` as a careless writer makes it: stdlib json writes ints of any size
    and NaN/Infinity (not JSON at all), which orjson refuses to write."""
    return json.dumps(value, ensure_ascii=False)


def good_v1() -> dict:
    return {"id_str": str(GOOD_ID), "text": GOOD_TEXT, "user": {"id_str": "7", "screen_name": "a"}}


def good_v2() -> dict:
    return {"id": str(GOOD_ID), "text": GOOD_TEXT, "author_id": "7"}


def write(suffix: str, data: bytes | str) -> Path:
    path = FOLDER / f"{next(_names)}{suffix}"
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass"))
    return path


def ingest(path: Path, fmt: str | None = None) -> SQLiteStore:
    """Every record read is posts or a reason; the pipeline (normalize, store) never raises."""
    if fmt or path.suffix != ".txt":
        from townsquare.ingest.detect import SkipFile, detect_format
        try:
            shape = fmt or detect_format(path)
        except SkipFile:
            shape = None
        if shape:
            try:
                for item in reader_for(path, shape, "prop", None):
                    assert item.posts or item.error, item
            except (SkipFile, ValueError) as e:   # a file skipped whole (MappingError is one)
                assert "column" in str(e) or isinstance(e, SkipFile), e
    store = SQLiteStore(":memory:")
    IngestPipeline(store, fmt=fmt, writer="inline").run([path])
    return store


def stored_good(store: SQLiteStore) -> bool:
    p = store.get(GOOD_ID)
    return p is not None and p.text == GOOD_TEXT


# --- arbitrary bytes --------------------------------------------------------------------------

@PROPERTIES
@given(st.binary(max_size=3000),
       st.sampled_from([(".json", None), (".jsonl", None), (".csv", None), (".tsv", None),
                        (".js", None), (".json", "v1"), (".json", "v2"), (".jsonl", "json"),
                        (".txt", "archive"), (".txt", "csv")]))
def test_arbitrary_bytes_never_raise(data, kind):
    suffix, fmt = kind
    if suffix == ".js":
        data = b"window.YTD.tweets.part0 = " + data
    ingest(write(suffix, data), fmt)


# --- a valid post among garbage, per reader ---------------------------------------------------

LINE_TEXT = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\n\r\x85\u2028\u2029\x0b\x0c\x1c\x1d\x1e"), max_size=120)


@PROPERTIES
@given(st.lists(ANY_V1.map(dumps) | LINE_TEXT, max_size=6),
       st.lists(ANY_V1.map(dumps) | LINE_TEXT, max_size=6), st.sampled_from([None, "v1"]))
def test_jsonl_v1_good_post_among_garbage_lines(before, after, fmt):
    lines = [*before, orjson.dumps(good_v1()).decode(), *after]
    assert stored_good(ingest(write(".jsonl", "\n".join(lines) + "\n"), fmt))


@PROPERTIES
@given(st.lists(ANY_V2.map(dumps) | LINE_TEXT, max_size=6),
       st.lists(ANY_V2.map(dumps) | LINE_TEXT, max_size=6), st.sampled_from([None, "v2"]))
def test_jsonl_v2_good_post_among_garbage_lines(before, after, fmt):
    lines = [*before, orjson.dumps(good_v2()).decode(), *after]
    assert stored_good(ingest(write(".jsonl", "\n".join(lines) + "\n"), fmt))


@PROPERTIES
@given(st.lists(ANY_V1 | ANY_V2, max_size=6), st.lists(ANY_V1 | ANY_V2, max_size=6),
       st.sampled_from([good_v1, good_v2]), st.booleans())
def test_json_array_good_post_among_garbage_items(before, after, good, indent):
    text = json.dumps([*before, good(), *after], indent=1 if indent else None,
                      ensure_ascii=False)
    assert stored_good(ingest(write(".json", text)))


@PROPERTIES
@given(st.lists(ANY_V1, max_size=5), st.lists(ANY_V1, max_size=5))
def test_archive_good_tweet_among_garbage_items(before, after):
    tweet = {"id_str": str(GOOD_ID), "full_text": GOOD_TEXT, "created_at": "Tue Dec 31 18:30:00 +0000 2019"}
    body = json.dumps([*before, {"tweet": tweet}, *after], indent=2, ensure_ascii=False)
    assert stored_good(ingest(write(".js", "window.YTD.tweets.part0 = " + body)))


# CSV rows join lines while a quote is open (a quoted field may hold a line break), so garbage
# with quotes could swallow the good row into its own: the rows here have none (arbitrary bytes,
# quotes included, are the first test's).
ROW_TEXT = st.text(st.characters(blacklist_categories=["Cs"],
                                 blacklist_characters='"\n\r\x85\u2028\u2029\x0b\x0c\x1c\x1d\x1e'),
                   max_size=80)


@PROPERTIES
@given(st.lists(ROW_TEXT, max_size=6), st.lists(ROW_TEXT, max_size=6),
       st.sampled_from([(".csv", ","), (".tsv", "\t")]),
       st.sampled_from(["id{d}text", "tweet_id{d}tweet_text{d}created_at{d}retweet_count",
                        "Tweet ID{d}Tweet{d}label{d}lat{d}lon"]))
def test_csv_good_row_among_garbage_rows(before, after, kind, header):
    suffix, d = kind
    width = header.count("{d}") + 1
    good = d.join([str(GOOD_ID), GOOD_TEXT] + [""] * (width - 2))
    text = "\n".join([header.format(d=d), *before, good, *after]) + "\n"
    assert stored_good(ingest(write(suffix, text)))

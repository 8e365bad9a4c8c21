from __future__ import annotations

import sqlite3

import pytest

from townsquare.posts import Post
from townsquare.search.engine import SearchConfig, SearchEngine
from townsquare.search.lexindex import LexicalIndex, index_tokens, scramble, unscramble
from townsquare.query import parse
from townsquare.search.rank import RankWeights
from townsquare.store.base import Stored

BASE = 1212092628029698048
T0 = 1_600_000_000_000

TEXTS = [
    "Flood waters rising near the old mill #flood",
    "Séisme à Quito: des bâtiments effondrés",
    "The bridge on route nine collapsed after the FLOOD",
    "Red Cross volunteers hand out water and food",
    "No flood here, just a sunny day",
    "covid-19 cases rising at the hospital",
    "Donate to the red cross today! https://example.org/give",
    "Storm warning: power outage expected tonight",
    "flood flood flood relief now",
    "Terremoto en Ecuador, muchas víctimas",
]


def _fts5_tokens(text: str) -> list[str]:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(x, tokenize=\"unicode61 remove_diacritics 2\")")
    db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
    db.execute("INSERT INTO t(x) VALUES (?)", (text,))
    return [r[0] for r in db.execute("SELECT term FROM v ORDER BY offset")]


@pytest.mark.parametrize("text", TEXTS + ["Ça déménage à Zürich", "e-mail: A.B@c.de 10:30", "naïve café"])
def test_index_tokens_are_the_fts5_index_tokens(text):
    assert index_tokens(text) == _fts5_tokens(text)


@pytest.fixture
def indexed(store):
    store.write_batch([Stored(Post(id=BASE + i, text=t, source="t", created_at=T0 + i * 1000,
                                   author_handle="ann" if i % 2 else "bob").normalized())
                       for i, t in enumerate(TEXTS)], [])
    lx = LexicalIndex(store, None)
    assert lx.refresh() == len(TEXTS) and lx.lag() == 0
    return store, lx


@pytest.mark.parametrize("query", [
    "flood", "FLOOD", "flood -sunny", '"red cross"', "red cross donate", "flood OR storm",
    "(flood OR storm) from:ann", "seisme", "séisme quito", "victimas", "#flood", "covid-19",
    "flood -from:bob", "relief -flood", "water", '"power outage" -tonight', "flood lang:en",
    "flood since_time:1600000002", "flood until_time:1600000003",
    "flood since_time:1600000002 until_time:1600000009", "flood within_time:1h",
])
def test_engine_with_the_index_finds_what_fts5_finds(indexed, query):
    store, lx = indexed
    # the strict list only: the any-word list differs by design (common words left out)
    cfg = SearchConfig(lexical_depth=50, weights=RankWeights(any_terms=0))
    fast = SearchEngine(store, lexical_index=lx, config=cfg).run(query, limit=50)
    slow = SearchEngine(store, config=cfg).run(query, limit=50)
    assert sorted(h.id for h in fast.results) == sorted(h.id for h in slow.results)


def test_scramble_is_a_bijection_that_unscramble_inverts():
    import numpy as np
    edge = np.array([0, 1, -1, 2**63 - 1, -2**63, BASE, T0], dtype=np.int64)
    rng = np.random.default_rng(0)
    values = np.concatenate([edge, rng.integers(-2**63, 2**63 - 1, 10_000, dtype=np.int64)])
    mixed = scramble(values)
    assert mixed.dtype == np.int64 and unscramble(mixed).tolist() == values.tolist()
    assert len(set(mixed.tolist())) == len(set(values.tolist()))


@pytest.mark.parametrize("stream", ["snowflake", "consecutive", "times"])
def test_scrambled_columns_in_stream_order_fit_no_line(stream):
    """What the speed rests on: values in a stream's order (ids, times) land all over the
    range once scrambled, so no line fits a block of them and tantivy bitpacks the column
    instead of keeping lines per block."""
    import numpy as np
    rng = np.random.default_rng(1)
    n = 512 * 20
    ms = np.cumsum(rng.integers(0, 3, n))                            # a few posts per ms
    values = {"snowflake": BASE + (ms << 22) + rng.integers(0, 2**22, n),
              "consecutive": np.arange(1, n + 1),
              "times": T0 + ms}[stream].astype(np.int64)
    mixed = scramble(values).astype(np.float64) / 2**64             # (n,) in [-0.5, 0.5)
    x = np.arange(512, dtype=np.float64)
    for block in mixed.reshape(-1, 512):
        residual = block - np.polyval(np.polyfit(x, block, 1), x)
        assert residual.std() > 0.2                                  # a uniform spread: ~0.29


def test_refresh_is_incremental_and_a_changed_text_replaces_its_document(indexed):
    store, lx = indexed
    store.write_batch([Stored(Post(id=BASE + 100, text="brand new wildfire report", source="t",
                                   created_at=T0).normalized())], [])
    assert lx.lag() == 1 and lx.refresh() == 1
    assert [pid for pid, _ in lx.top(parse("wildfire"), 10)[0]] == [BASE + 100]
    store.write_batch([Stored(Post(id=BASE + 100, text="brand new earthquake report",
                                   source="t", created_at=T0).normalized())], [])
    lx.refresh()
    assert lx.top(parse("wildfire"), 10)[0] == []
    assert [pid for pid, _ in lx.top(parse("earthquake"), 10)[0]] == [BASE + 100]


def test_changed_posts_read_over_several_pages_leave_one_document_each(store, monkeypatch):
    # A page's older documents are deleted by one query before its new ones are added: the
    # new ones must stay, across pages, and each post must keep exactly one document.
    monkeypatch.setattr("townsquare.search.lexindex._PAGE", 2)
    store.write_batch([Stored(Post(id=BASE + i, text=f"first report {i}", source="t",
                                   created_at=T0 + i).normalized()) for i in range(5)], [])
    lx = LexicalIndex(store, None)
    assert lx.refresh() == 5
    store.write_batch([Stored(Post(id=BASE + i, text=f"second report {i}", source="t",
                                   created_at=T0 + i).normalized()) for i in (0, 2, 3)], [])
    assert lx.refresh() == 3
    assert lx._searcher.num_docs == 5
    assert sorted(pid for pid, _ in lx.top(parse("second"), 10)[0]) == [BASE, BASE + 2, BASE + 3]
    assert sorted(pid for pid, _ in lx.top(parse("first"), 10)[0]) == [BASE + 1, BASE + 4]


def test_queries_without_indexable_text_are_left_to_fts5(indexed):
    store, lx = indexed
    assert lx.top(parse("from:ann"), 10) is None
    assert lx.top(parse("🔥"), 10) is None
    # an OR with an operator side compiles into the index (lexquery): the store's exact set
    got, total = lx.top(parse("flood OR from:ann"), 10)
    want = store.lexical_search(parse("flood OR from:ann"), order="time", limit=100)
    assert {pid for pid, _ in got} == {pid for pid, _ in want} and total == len(want)


def test_the_index_persists_and_resumes_from_its_watermark(store, tmp_path):
    store.write_batch([Stored(Post(id=BASE, text="first flood", source="t").normalized())], [])
    LexicalIndex(store, tmp_path / "lex").refresh()
    store.write_batch([Stored(Post(id=BASE + 1, text="second flood", source="t").normalized())], [])
    again = LexicalIndex(store, tmp_path / "lex")
    assert again.lag() == 1 and again.refresh() == 1
    assert sorted(pid for pid, _ in again.top(parse("flood"), 10)[0]) == [BASE, BASE + 1]


def test_an_index_whose_ids_were_scrambled_another_way_is_rebuilt(store, tmp_path):
    """Its columns would read back as other numbers: every page empty, with no error."""
    import json
    store.write_batch([Stored(Post(id=BASE, text="first flood", source="t").normalized())], [])
    LexicalIndex(store, tmp_path / "lex").refresh()
    meta = tmp_path / "lex" / "townsquare.json"
    saved = json.loads(meta.read_text())
    meta.write_text(json.dumps(saved | {"scramble": saved["scramble"] + 2}))
    again = LexicalIndex(store, tmp_path / "lex")
    assert again.watermark == 0 and again.refresh() == 1
    assert [pid for pid, _ in again.top(parse("flood"), 10)[0]] == [BASE]


def test_deleted_posts_are_not_returned(indexed):
    store, lx = indexed
    store.delete([BASE + 0])
    r = SearchEngine(store, lexical_index=lx).run("flood")
    assert BASE not in [h.id for h in r.results]


def test_any_word_list_leaves_out_common_words(indexed):
    store, lx = indexed
    assert lx.share("flood") == 0.4 and lx.share("relief") == 0.1
    loose = SearchEngine(store, lexical_index=lx, config=SearchConfig(common_share=0.5))
    ids = [h.id - BASE for h in loose.run("flood relief").results]
    assert ids[0] == 8 and set(ids) == {0, 2, 4, 8}   # both words first, then either word
    strict = SearchEngine(store, lexical_index=lx, config=SearchConfig(common_share=0.3))
    ids = [h.id - BASE for h in strict.run("flood relief").results]
    assert ids == [8]                         # "flood" is in 40% of the posts: left out
    # no post has both words: without embeddings, the posts with either word
    assert {h.id - BASE for h in loose.run("relief water").results} == {3, 8}


def test_queries_stay_valid_while_another_thread_refreshes(tmp_path):
    """The server's indexer swaps the searcher after each refresh while request threads query:
    every query must read one snapshot (its hits address that snapshot's segments)."""
    import threading

    from townsquare.posts import Post
    from townsquare.query import parse
    from townsquare.search.lexindex import LexicalIndex
    from townsquare.store.base import Stored
    from townsquare.store.sqlite import SQLiteStore

    store = SQLiteStore(tmp_path / "t.db")
    lx = LexicalIndex(store, tmp_path / "lexical", keep_writer=True)
    base, errors, stop = 1_212_092_628_029_698_048, [], threading.Event()

    def query():
        reader = SQLiteStore(tmp_path / "t.db")
        try:
            while not stop.is_set():
                hits, _total = lx.top(parse("gondola"), 50)
                assert all(base <= pid < base + 10_000 for pid, _ in hits)
                lx.top(parse("gondola OR cable"), 20)
        except Exception as e:              # noqa: BLE001 - reported below
            errors.append(e)
        finally:
            reader.close()
    t = threading.Thread(target=query)
    t.start()
    for k in range(40):
        store.write_batch([Stored(Post(id=base + k * 50 + i, text=f"gondola cable {k} {i}",
                                       source="t").normalized()) for i in range(50)], [])
        lx.refresh()
    stop.set()
    t.join()
    lx.close()
    assert not errors, errors[0]
    assert lx.top(parse("gondola"), 5000)[1] == 2000


def test_a_refresh_in_progress_leaves_the_lag_until_its_commit_is_searched(indexed):
    """A query on another thread mid-refresh must not take the old searcher for complete:
    ``latest`` uses the index only when its lag is 0 (else FTS5), and promises new posts."""
    store, lx = indexed
    store.write_batch([Stored(Post(id=BASE + 200, text="xylophonist parade downtown", source="t",
                                   created_at=T0).normalized())], [])
    writer = lx.index.writer(heap_size=lx.heap, num_threads=1)
    lx._add_since(writer, None)                 # rows added, the commit not done yet
    assert lx.watermark == store.max_seq() and lx.lag() == 1
    engine = SearchEngine(store, lexical_index=lx, refresh_indexes=False)   # as the server's
    assert [h.id for h in engine.run("xylophonist", mode="latest").results] == [BASE + 200]
    lx._commit(writer, settled=lx.settled_through)
    assert lx.lag() == 0
    assert [h.id for h in engine.run("xylophonist", mode="latest").results] == [BASE + 200]


def test_json_documents_index_as_tantivy_documents_of_the_same_fields():
    """``_add`` sends each row as JSON (``add_json``, parsed in tantivy): the index must be the
    one that ``tantivy.Document`` objects of the same fields give. Rows with every kind of value
    (snowflake ids, negative scrambled columns, counts missing, keywords absent or many, text
    JSON must escape) are indexed both ways; every term, keyword and column reads the same."""
    import tantivy

    from townsquare.search.lexindex import _add, _fields, build_schema
    from townsquare.store.base import IndexRow

    texts = TEXTS + ['quote " backslash \\ tab\tnewline\nend', "emoji 🌊 and 日本語 and \x7f",
                     "Ünïcödé ÅNGSTRÖM façade", ""]
    rows = [IndexRow(id=BASE + 7919 * i, seq=i + 1, text=t, created_at=T0 + 60_000 * i,
                     lang=[None, "en", "ES"][i % 3], author_handle=[None, "Ana_B"][i % 2],
                     hashtags=["Flood", "RedCross"][: i % 3], mentions=["CityOfX"] if i % 4 == 1
                     else [], cashtags=["ABC"] if i == 5 else [],
                     flags=("links", "hashtags")[: i % 3], like_count=[None, 0, 12][i % 3],
                     retweet_count=i, reply_count=None, quote_count=2 ** 40 if i == 3 else 1)
            for i, t in enumerate(texts)]

    def index(add):
        idx = tantivy.Index(build_schema())
        idx.register_tokenizer("folded", tantivy.TextAnalyzerBuilder(
            tantivy.Tokenizer.simple()).filter(tantivy.Filter.lowercase()).filter(
            tantivy.Filter.ascii_fold()).build())
        w = idx.writer(heap_size=15_000_000, num_threads=1)
        add(w)
        w.commit()
        w.wait_merging_threads()
        idx.reload()
        return idx.searcher()

    mixed = scramble([[r.id, r.created_at] for r in rows]).reshape(-1, 2).tolist()
    ours = index(lambda w: _add(w, rows))
    reference = index(lambda w: [w.add_document(tantivy.Document(**_fields(r, m)))
                                 for r, m in zip(rows, mixed)])
    schema = build_schema()

    def read(searcher, query):
        hits = searcher.search(query, 100).hits
        cols = ("id", "seq", "created_at", "id_mixed", "created_mixed", "likes", "retweets",
                "replies", "quotes")
        got = {c: searcher.fast_field_values(c, [a for _, a in hits]) for c in cols}
        return sorted(zip(*got.values())), sorted(round(s, 5) for s, _ in hits)

    words = {w for r in rows for w in index_tokens(r.text)}
    queries = [tantivy.Query.all_query()]
    queries += [tantivy.Query.term_query(schema, "text", w) for w in sorted(words)]
    for field, values in (("lang", ["en", "es"]), ("author", ["ana_b"]),
                          ("tags", ["#flood", "#redcross", "@cityofx", "$abc"]),
                          ("flags", ["links", "hashtags"])):
        queries += [tantivy.Query.term_query(schema, field, v) for v in values]
    assert len(words) > 40
    for query in queries:
        assert read(ours, query) == read(reference, query), query
    assert ours.num_docs == reference.num_docs == len(rows)
    assert read(ours, queries[0])[0][3][-1] == rows[3].quote_count    # sorted by id: row 3

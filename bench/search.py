"""Search latency at >= 1,000,000 posts: p50 / p95 / p99 for a fixed mix of 200 queries, side by
side with tantivy (a Rust BM25 engine with block-max WAND) on the same posts in the same run.

What it measures
----------------
The store: the shared datasets (184,641 records) replayed into >= 1,000,000 posts with ids
shifted per round (the same replay as ``bench/ingest.py``), ingested by the product's pipeline.
The replayed texts are the same texts in every round, so what the late stage computed for round 0
(languages, near-duplicate links) is copied to the other rounds from the full store that
``eval/search.py`` builds (``--vectors-from``) instead of being recomputed.

Vectors: every replayed post gets the real e5 vector that ``eval/search.py`` computed for the same
text in the full eval store (the rounds repeat the texts, so embedding them again would give the
same vectors and take ~1 hour); the HNSW index holds 1.1M real vectors, with each text present
once per round, as a stream's retweets are. A text without a vector there (none, once the eval
store is fully embedded) gets a neighbour's vector plus seeded noise. Semantic *quality* is
measured by ``eval/search.py``, not here.

Queries (200, fixed, built from word lists written here; no tweet text): 60 single terms, 40
phrases, 50 with operators (``lang:``, ``-filter:links``, ``since:``/``until:``, hashtags,
exclusions, ``OR``), and 50 hybrid natural-language queries (English, French, Spanish). Each
kind runs through ``SearchEngine.run`` (``top`` mode, 20 results, the engine's default depth:
the every-word and any-word BM25 lists 1,000 deep each, fused once): the first three with the
semantic stage off (lexical), the last with it on (hybrid). Without the semantic stage the
engine reads its lexical lists shallow first and deeper only until the page is proven
(``SearchConfig.lexical_first_depth``; the depths it needed are counted per kind). The 150
lexical queries also run in ``latest`` mode (20 newest exact matches), and the 50 operator
queries through the hybrid engine too (``operators, hybrid``, no target: an operator query in
the default mode, its lexical lists 1,000 deep). A second pass, after all
that, runs each lexical query again beside the same engine with its lists read whole
(``lexical_first_depth=0``, the same pages), tantivy deep, and tantivy at the depth ours read
(the same retrieval work), interleaved; it comes last so that the first table's rows run as
they always did (what a row measures depends on how long the process has loaded the machine:
the hybrid queries, last in the first pass, measured 10.9 ms p50 in a run that took them first,
against 11.4-14.4 ms in runs of this order on the same code). A third pass measures the
learned re-ranking (``search.rerank``): each hybrid query with it and without it, interleaved,
at 20 and at 1,000 results a page. Every query runs once to warm
caches, then ``--repeat`` (5) times, ours and the references interleaved (in an order rotated
each repetition, ``rotated``), and its time is the median of those (on a shared machine a load
spike then hits ours and the reference alike). The hybrid queries' warm-up runs are reported
too (``hybrid, first run``): a query a user types is new, and what it reads of the store (its
neighbours' rows) is not in any cache yet; for before/after runs on one store, drop the OS page
cache before each (``sync; echo 1 > /proc/sys/vm/drop_caches``, as root), or the second run
finds the first's pages. The time is the whole ``run`` (parse, retrieval, ranking, hydration
of the 20 results). The engine is ``services.indexes.build_engine`` as the CLI builds it: FTS5
plus its tantivy index (``search/lexindex.py``), the faiss HNSW vector index.

Last, one ``fast_field_values`` call on our index per column, for 20 and 1,000 hits: the id and
time columns in the stream's order beside their scrambled copies (``lexindex.scramble``, what
search reads) and a count column: what a hit list's values cost to read.

The references: tantivy over the same posts (id, text; tokenizer: lowercase + ASCII folding, as
the store's FTS5 ``unicode61 remove_diacritics 2``), on the text part of each lexical query
(operators have no equivalent there and are dropped, which favours the reference):

- ``tantivy`` (the one the targets compare with): the retrieval work of our lexical arm, every
  word top 1,000 by BM25 (AND), plus, for a query of two or more words or phrases (when ours
  adds its any-word list), any word top 1,000 (OR), each hit's id read from tantivy's id column
  (a fast field).
- ``tantivy top 200``: the earlier reference, AND top 200 with each hit's stored document read.
- ``tantivy, our compiled queries`` (second pass, context only): tantivy on our own index running
  the queries our lexical arm compiles, operators in, as deep as ``tantivy``: how much of an
  operator query's time is the filter's own cost in tantivy (a filtered query scores every
  match; block-max WAND skips blocks only for words).

Run
---
    python eval/search.py            # first, once: builds and embeds the eval store
    python bench/search.py --write-results

Results: ``bench/results/search.json`` and ``bench/results/search.md``; with ``--no-semantic``
(no vectors needed: the eval store's languages and near-duplicate links suffice, a quick check
of a lexical change), ``bench/results/search_lexical.*`` instead, whose "hybrid" rows are then
lexical too.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from search_report import FIRST, OPS_HYBRID, TARGETS, compare, ratio, report

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
WORK = REPO / "bench" / ".work" / "search"
RESULTS = REPO / "bench" / "results"
EVAL_HOME = REPO / "eval" / ".work" / "home"

TERMS = ["earthquake", "flood", "hurricane", "wildfire", "tornado", "rescue", "donate", "victims",
         "shelter", "evacuation", "damage", "power", "water", "relief", "missing", "injured",
         "prayers", "volunteers", "bridge", "road", "hospital", "school", "aid", "emergency",
         "storm", "rain", "fire", "smoke", "help", "safe", "dead", "killed", "homes", "families",
         "nepal", "harvey", "irma", "maria", "sandy", "kerala", "houston", "florida", "texas",
         "mexico", "ecuador", "italy", "chile", "pakistan", "india", "california", "boston",
         "oklahoma", "alberta", "queensland", "ebola", "mers", "volcano", "landslide", "cyclone",
         "typhoon"]
PHRASES = ["red cross", "death toll", "power outage", "stay safe", "please donate", "relief efforts",
           "search and rescue", "state of emergency", "thoughts and prayers", "flash flood",
           "clean water", "rescue teams", "missing people", "help victims", "affected areas",
           "national guard", "emergency services", "natural disaster", "food and water", "go fund me",
           "hurricane harvey", "hurricane irma", "nepal earthquake", "kerala floods", "boston marathon",
           "oklahoma tornado", "alberta floods", "california wildfires", "puerto rico", "sri lanka",
           "fort mcmurray", "new zealand", "united nations", "world health", "breaking news",
           "right now", "our hearts", "donations needed", "rescue operation", "flood warning"]
OPERATORS = ["flood lang:en", "earthquake -filter:links", "hurricane since:2017-08-01 until:2017-10-01",
             "#harvey", "#nepal rescue", "rescue -harvey", "fire OR smoke", "(flood OR rain) texas",
             "donate -filter:links lang:en", "#prayforNepal", "earthquake until:2016-01-01",
             "tornado since:2013-05-01", "victims -killed", "relief lang:en -filter:retweets",
             "shelter OR evacuation", "#irma florida", "power outage -filter:links",
             "\"red cross\" donate", "water OR food OR shelter", "storm -hurricane",
             "flood since:2018-01-01", "#kerala OR #keralafloods", "hospital injured",
             "damage -filter:replies", "help lang:es", "terremoto", "sismo lang:es", "aide lang:fr",
             "missing -found", "(earthquake OR quake) nepal", "#cyclonepam", "ebola -mers",
             "volcano OR eruption", "evacuation since:2016-05-01 until:2016-06-01",
             "landslide -election", "mexico earthquake -filter:links", "#sandy", "boston -marathon",
             "prayers -thoughts", "fire -filter:media", "rescue OR volunteers lang:en",
             "flood until:2014-01-01", "typhoon OR cyclone", "#mh370", "plane missing",
             "death toll -filter:links", "school damage", "road closed", "bridge collapsed",
             "emergency since:2019-01-01"]
HYBRID = ["people trapped under collapsed buildings", "where can I donate to help flood victims",
          "how many people died in the earthquake", "roads closed because of flooding",
          "volunteers helping rescue animals", "power is still out after the storm",
          "hospitals need blood donations", "families evacuated from their homes",
          "firefighters fighting the wildfire", "missing plane search update",
          "séisme victimes", "inondations dégâts", "ouragan évacuation", "incendie forêt pompiers",
          "aide humanitaire dons", "personnes disparues", "routes coupées par les inondations",
          "terremoto víctimas", "inundaciones daños", "huracán evacuación", "incendio forestal bomberos",
          "ayuda humanitaria donaciones", "personas desaparecidas", "carreteras cortadas inundaciones",
          "shelters open for evacuees", "drinking water shortage", "death toll rising",
          "prayers for the victims", "schools closed after the disaster", "aid workers arrive",
          "damage to bridges and roads", "emergency declared by the governor", "strong aftershocks",
          "the river overflowed", "tornado destroyed houses", "volcanic ash flights cancelled",
          "virus outbreak hospital cases", "epidemic spreading in west africa", "cyclone hit vanuatu",
          "typhoon philippines evacuation", "landslide buried village", "rain keeps falling",
          "smoke from the fires", "military sent to help", "red cross volunteers",
          "national guard rescue boats", "insurance claims after hurricane", "food supplies running low",
          "telephone lines down", "stay safe everyone"]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _ingest_bench():
    spec = importlib.util.spec_from_file_location("bench_ingest", REPO / "bench" / "ingest.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def build_store(data: Path, home: Path, rounds: int | None):
    from townsquare.ingest.pipeline import IngestPipeline
    from townsquare.store import open_store
    home.mkdir(parents=True, exist_ok=True)
    store = open_store(home)
    if store.count() >= 1_000_000:
        log(f"reusing {store.count():,} posts in {home}")
        return store, None
    ib = _ingest_bench()
    replay_dir = home.parent / "replay"
    replay = ib.build_replay(data, replay_dir, rounds)
    t = time.perf_counter()
    r = IngestPipeline(store).run([replay_dir])
    shutil.rmtree(replay_dir, ignore_errors=True)
    log(f"ingested {r.totals.inserted:,} posts in {time.perf_counter() - t:.0f} s")
    return store, replay


def copy_late_stage(store, source_home: Path, rounds: int) -> None:
    """Languages and near-duplicate links of round r's posts are round 0's (same texts)."""
    import sqlite3 as _sq
    shift = 1 << 52
    if store.stats()["late_stage"]["pending_posts"] == 0:
        return
    src = _sq.connect(source_home / "townsquare.db")
    rows = src.execute("SELECT id, lang, dup_of FROM posts").fetchall()
    src.close()
    with store._tx() as db:
        for r in range(rounds):
            db.executemany("UPDATE posts SET lang = ?, dup_of = ? WHERE id = ?",
                           [(lang, dup - r * shift if dup else None, pid - r * shift)
                            for pid, lang, dup in rows])
        db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('enriched_seq', ?)",
                   (str(store.max_seq()),))
    log(f"languages and near-duplicate links copied for {len(rows) * rounds:,} posts")


def assign_vectors(store, source_home: Path) -> int:
    """Give every post a vector for the latency measurement (see the module docstring): the e5
    vector the eval store holds for its text, else (texts not embedded there) a sampled post's
    vector chosen by a hash of its text, with seeded noise so that no two points coincide."""
    import hashlib

    import numpy as np

    from townsquare.embed.stage import from_blobs, to_blob
    from townsquare.store import open_store
    src = open_store(source_home)
    model = src.embed_model()
    if store.embed_model() not in (None, model):
        log(f"the bench store holds {store.embed_model()} vectors: replacing them with {model}")
        store.reset_vectors(model)
    if store.embedding_lag()["pending_posts"] == 0:
        return 0
    rows = src.vectors_after(0, 10_000_000)
    if not rows:
        raise SystemExit(f"no vectors in {source_home}: run `python eval/search.py` first")
    by_text = {}
    texts = src.posts_by_id([r[0] for r in rows])
    for (pid, _s, blob) in rows:
        by_text[texts[pid].text] = blob
    pool = from_blobs([r[2] for r in rows], 384)                     # (n, 384)
    src.close()
    rng = np.random.default_rng(7)
    n, own = 0, 0
    batch: list[tuple[int, int, bytes]] = []
    watermark = 0
    for pid, seq, text in _all_posts(store):
        blob = by_text.get(text)
        if blob is None:
            j = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")
            v = pool[j % len(pool)] + rng.normal(0, 0.02, 384).astype(np.float32)
            blob = to_blob((v / np.linalg.norm(v))[None, :])[0]
        else:
            own += 1
        batch.append((pid, seq, blob))
        watermark = max(watermark, seq)
        if len(batch) == 20_000:
            store.write_vectors(model, batch, watermark=watermark)
            n += len(batch)
            batch = []
            log(f"  vectors assigned: {n:,}")
    if batch:
        store.write_vectors(model, batch, watermark=watermark)
        n += len(batch)
    log(f"{n:,} vectors assigned ({own:,} posts with their own text's vector)")
    return n


def _all_posts(store):
    seq = 0
    while True:
        rows = store.posts_since(seq, 20_000)
        if not rows:
            return
        yield from rows
        seq = rows[-1][1]


def pct(v: list[float], p: float) -> float:
    s = sorted(v)
    return round(s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))], 2) if s else 0.0


def summary(v: list[float]) -> dict:
    return {"n": len(v), "p50_ms": pct(v, 50), "p95_ms": pct(v, 95), "p99_ms": pct(v, 99),
            "mean_ms": round(statistics.fmean(v), 2) if v else 0.0}


def queries() -> list[tuple[str, str]]:
    qs = ([("term", t) for t in TERMS] + [("phrase", f'"{p}"') for p in PHRASES]
          + [("operators", o) for o in OPERATORS] + [("hybrid", h) for h in HYBRID])
    assert len(qs) == 200, len(qs)
    return qs


class Tantivy:
    def __init__(self, store, path: Path):
        import tantivy
        self.t = tantivy
        sb = tantivy.SchemaBuilder()
        sb.add_integer_field("id", stored=True, indexed=True, fast=True)
        sb.add_text_field("text", stored=False, tokenizer_name="folded")
        self.schema = sb.build()
        fresh = not path.exists()
        path.mkdir(parents=True, exist_ok=True)
        self.index = tantivy.Index(self.schema, path=str(path))
        analyzer = (tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
                    .filter(tantivy.Filter.lowercase()).filter(tantivy.Filter.ascii_fold()).build())
        self.index.register_tokenizer("folded", analyzer)
        self.build_s = None
        if fresh:
            t = time.perf_counter()
            w = self.index.writer(heap_size=512 * 2**20, num_threads=2)
            for p in store.iter_posts():
                w.add_document(tantivy.Document(id=p.id, text=p.text))
            w.commit()
            w.wait_merging_threads()
            self.build_s = round(time.perf_counter() - t, 1)
        self.index.reload()
        self.searcher = self.index.searcher()

    def search(self, text: str, k: int = 200) -> list[int]:
        q = self.index.parse_query(text, ["text"], conjunction_by_default=True)
        return [self.searcher.doc(addr)["id"][0] for _s, addr in self.searcher.search(q, k).hits]

    def deep(self, text: str, any_words: bool, k: int = 1000) -> list[int]:
        """Our lexical arm's retrieval: AND top k, and OR top k when ``any_words``; ids from the
        id column."""
        ids = []
        for conj in (True, False) if any_words else (True,):
            q = self.index.parse_query(text, ["text"], conjunction_by_default=conj)
            hits = self.searcher.search(q, k, count=False).hits
            ids += self.searcher.fast_field_values("id", [a for _s, a in hits])
        return ids


def rotated(names: list[str], rep: int, fixed: bool) -> list[str]:
    """The order of one repetition's runs: rotated by one each repetition, so that over the
    repetitions each system runs after each of the others about as often (what ran just before
    decides what is left in the CPU's caches: the reference's own index or ours);
    ``fixed`` (``--fixed-order``): the same order every time (the bench before 2026-12-07's
    twenty-first stop)."""
    k = 0 if fixed else rep % len(names)
    return names[k:] + names[:k]


def text_part(query: str) -> tuple[str, int]:
    """The words and phrases of a query, for the reference (operators dropped), and how many."""
    from townsquare.query import positive_text, parse
    parts = [p for p in positive_text(parse(query)) if any(ch.isalnum() for ch in p)]
    return " ".join(f'"{p}"' if " " in p else p for p in parts), len(parts)


def column_reads(lx, repeat: int = 200) -> dict:
    """Microseconds (median of ``repeat``) for one ``fast_field_values`` call on our index, per
    column and number of hits: a column in stream order (``id``, ``created_at``: tantivy's
    blockwise-linear codec, whose metadata every call opens for every segment) beside the same
    values scrambled (``lexindex.scramble``: bitpacked, what search reads) and a count."""
    import tantivy
    searcher = lx._searcher
    hits = searcher.search(tantivy.Query.term_query(lx.schema, "text", TERMS[0]), 1000,
                           count=False).hits
    out = {}
    for n in (20, 1000):
        addrs = [a for _, a in hits[:n]]
        for field in ("id", "id_mixed", "created_at", "created_mixed", "likes"):
            v = []
            for _ in range(repeat):
                t = time.perf_counter()
                searcher.fast_field_values(field, addrs)
                v.append(time.perf_counter() - t)
            out.setdefault(field, {})[str(len(addrs))] = round(statistics.median(v) * 1e6, 1)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--vectors-from", type=Path, default=EVAL_HOME,
                    help="the full eval store (languages, near-duplicate links, e5 vectors)")
    ap.add_argument("--no-semantic", action="store_true",
                    help="lexical engines only (no vectors): results in search_lexical.*")
    ap.add_argument("--write-results", action="store_true")
    ap.add_argument("--work", type=Path, default=WORK,
                    help="the bench's folder (its store in WORK/home, the reference in "
                         "WORK/tantivy): another copy, e.g. /work/basecopy/bench/.work/search")
    ap.add_argument("--json-out", type=Path, help="also write this run's results here")
    ap.add_argument("--compare", type=Path,
                    help="an earlier run's results (JSON): add a before/after table")
    ap.add_argument("--compare-label", help="what the earlier run was, for that table")
    ap.add_argument("--fixed-order", action="store_true",
                    help="run ours and the references in one order every repetition (the "
                         "earlier method; default: rotated, see ``rotated``)")
    ap.add_argument("--repeat", type=int, default=5,
                    help="timed runs of each query (its time is their median)")
    args = ap.parse_args(argv)
    load_before = os.getloadavg()[0]      # before this run's own work raises it
    from townsquare.query import parse, positive_text
    from townsquare.search.config import SearchConfig
    from townsquare.search.lexquery import relax_text
    from townsquare.search.engine import SearchEngine
    from townsquare.services.indexes import build_engine
    from townsquare.settings import Settings

    home = args.work / "home"
    store, replay = build_store(args.data, home, args.rounds)
    rounds = replay["rounds"] if replay else round(store.count() / 184_551)
    if not (args.vectors_from / "townsquare.db").exists():
        raise SystemExit(f"no eval store at {args.vectors_from}: run `python eval/search.py` first")
    copy_late_stage(store, args.vectors_from, rounds)
    if not args.no_semantic:
        assign_vectors(store, args.vectors_from)
    t = time.perf_counter()
    settings = Settings(home=home)
    hybrid_engine = build_engine(store, settings, semantic=not args.no_semantic)
    if hybrid_engine.vectors is not None:
        hybrid_engine.vectors.refresh()
    index_s = round(time.perf_counter() - t, 1)
    log(f"vector index ready in {index_s} s")
    lexical_engine = build_engine(store, settings, semantic=False)
    t = time.perf_counter()
    if lexical_engine.lexical_index is not None:
        lexical_engine.lexical_index.refresh()
        hybrid_engine.lexical_index = lexical_engine.lexical_index
    # the lexical engine with its lists read whole, on the same tantivy index
    whole_engine = SearchEngine(store, lexical_index=lexical_engine.lexical_index,
                                config=SearchConfig(lexical_first_depth=0))
    lex_index_s = round(time.perf_counter() - t, 1)
    tv = Tantivy(store, args.work / "tantivy")
    qs = queries()
    kinds = ("term", "phrase", "operators")
    hybrid_ops = not args.no_semantic       # the operator queries through the hybrid engine too
    times: dict[str, list[float]] = {k: [] for k in kinds + ("hybrid", "latest")
                                     + ((OPS_HYBRID,) if hybrid_ops else ())}
    depths: dict[str, dict[int, int]] = {k: {} for k in kinds}   # depth a first page needed
    qdepth: dict[str, int] = {}
    # the second pass (after every row above): ours again, ours with the lists read whole,
    # tantivy deep again, tantivy at our depth, interleaved per query
    second: dict[str, dict[str, list[float]]] = {
        name: {k: [] for k in kinds} for name in ("top", "whole", "ref", "ref_same",
                                                  "ref_compiled")}
    ref: dict[str, list[float]] = {k: [] for k in kinds}
    ref200: dict[str, list[float]] = {k: [] for k in kinds}
    stages: dict[str, dict[str, list[float]]] = {k: {} for k in times}

    def stage_times(kind: str, r) -> None:
        for name, v in r.timings_ms.items():
            stages[kind].setdefault(name, []).append(v)

    def ms(fn) -> float:
        t = time.perf_counter()
        fn()
        return (time.perf_counter() - t) * 1000

    def compiled(query: str) -> None:
        """tantivy alone on our index running the queries our lexical arm compiles, operators
        in, read whole as the deep reference reads its lists: the every-word query top 1,000
        and, for two or more words or phrases, the any-word query top 1,000, ids from the id
        column. What filtering by the operators costs tantivy itself."""
        lx, node, now = lexical_engine.lexical_index, parse(query), int(time.time() * 1000)
        lx.search(lx.compile(node, now_ms=now).query, 1000, fields=False)
        parts = [t for t in positive_text(node) if store.has_words(t)]
        if len(parts) >= 2:
            c = lx.any_query(lexical_engine._uncommon(lx, parts), relax_text(node), now_ms=now)
            if c is not None:
                lx.search(c.query, 1000, fields=False)

    first: list[float] = []               # each hybrid query's first run, caches cold for it
    for kind, q in qs:                    # once, to warm caches
        eng = hybrid_engine if kind == "hybrid" else lexical_engine
        got = []
        t_first = ms(lambda: got.append(eng.run(q, limit=20)))
        if kind == "hybrid":
            first.append(t_first)
        if kind != "hybrid":
            depth = qdepth[q] = got[0].lexical_depth
            depths[kind][depth] = depths[kind].get(depth, 0) + 1
            whole_engine.run(q, limit=20)
            eng.run(q, limit=20, mode="latest")
            if kind == "operators" and hybrid_ops:
                hybrid_engine.run(q, limit=20)
            tq, n_parts = text_part(q)
            if tq:
                tv.deep(tq, n_parts >= 2)
                tv.search(tq)
    for kind, q in qs:
        # each query ``--repeat`` times, ours and the references interleaved (a load spike
        # then hits both): its time is the median
        eng = hybrid_engine if kind == "hybrid" else lexical_engine
        tq, n_parts = text_part(q)
        runs: dict[str, list[float]] = {"top": [], "latest": [], "ref": [], "ref200": []}
        got: list = []                 # responses: their stages recorded after the clock stops
        steps = {"top": lambda: got.append((kind, eng.run(q, limit=20))),
                 "latest": lambda: got.append(("latest", eng.run(q, limit=20, mode="latest"))),
                 "ref": lambda: tq and tv.deep(tq, n_parts >= 2),
                 "ref200": lambda: tq and tv.search(tq)}
        if kind == "operators" and hybrid_ops:     # a hybrid query with operators
            runs[OPS_HYBRID] = []
            steps[OPS_HYBRID] = lambda: got.append((OPS_HYBRID, hybrid_engine.run(q, limit=20)))
        for rep in range(args.repeat):
            names = ["top"] if kind == "hybrid" else list(steps)
            for name in rotated(names, rep, args.fixed_order):
                runs[name].append(ms(steps[name]))
            while got:
                stage_times(*got.pop())
        times[kind].append(statistics.median(runs["top"]))
        if kind != "hybrid":
            times["latest"].append(statistics.median(runs["latest"]))
            ref[kind].append(statistics.median(runs["ref"]))
            ref200[kind].append(statistics.median(runs["ref200"]))
        if runs.get(OPS_HYBRID):
            times[OPS_HYBRID].append(statistics.median(runs[OPS_HYBRID]))
    # The second pass, kept apart so that the rows above run as they always did: what the
    # hybrid row measures depends on how long the process has been loading the machine (its
    # queries come last; see the docstring).
    for kind, q in qs:
        if kind == "hybrid":
            continue
        tq, n_parts = text_part(q)
        runs = {name: [] for name in second}
        steps = {"top": lambda: lexical_engine.run(q, limit=20),
                 "whole": lambda: whole_engine.run(q, limit=20),
                 "ref": lambda: tq and tv.deep(tq, n_parts >= 2),
                 "ref_same": lambda: tq and tv.deep(tq, n_parts >= 2, qdepth[q]),
                 "ref_compiled": lambda: compiled(q)}
        for rep in range(args.repeat):
            for name in rotated(list(steps), rep, args.fixed_order):
                runs[name].append(ms(steps[name]))
        for name, v in runs.items():
            second[name][kind].append(statistics.median(v))
    # Third pass: what the learned re-ranking costs, each hybrid query's runs interleaved: the
    # default engine against the same engine with it off (``SearchConfig.rerank``), first pages
    # of 20 (most skip it: their posts lie inside its kept head) and pages of 1,000.
    rerank_ab: dict[str, list[float]] = {}
    reranked_first = 0
    if hybrid_engine.reranker is not None:
        fused_engine = SearchEngine(store, embedder=hybrid_engine.embedder,
                                    vectors=hybrid_engine.vectors,
                                    lexical_index=hybrid_engine.lexical_index,
                                    config=replace(hybrid_engine.config, rerank=False))
        for kind, q in qs:
            if kind != "hybrid":
                continue
            reranked_first += "rerank" in hybrid_engine.run(q, limit=20).timings_ms
            for limit in (20, 1000):
                runs = {"reranked": [], "fused only": []}
                for _ in range(args.repeat):
                    runs["reranked"].append(ms(lambda: hybrid_engine.run(q, limit=limit)))
                    runs["fused only"].append(ms(lambda: fused_engine.run(q, limit=limit)))
                for name, v in runs.items():
                    rerank_ab.setdefault(f"{name}, limit {limit}", []).append(
                        statistics.median(v))
    columns = column_reads(lexical_engine.lexical_index)
    lexical = [x for k in kinds for x in times[k]]
    all150 = "lexical (all 150)"
    res = {
        "benchmark": "search latency, 200 queries",
        "command": "python bench/search.py --write-results",
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "sqlite": sqlite3.sqlite_version, "load_1min_before": load_before},
        "posts": store.count(), "vectors": len(hybrid_engine.vectors) if hybrid_engine.vectors else 0,
        "vector_index_ready_s": index_s, "lexical_index_catch_up_s": lex_index_s,
        "tantivy_build_s": tv.build_s,
        "ours": {k: summary(v) for k, v in times.items()} | {all150: summary(lexical),
                                                              FIRST: summary(first)},
        "lexical_depths": {k: {str(d): n for d, n in sorted(v.items())}
                           for k, v in depths.items()},
        "second_pass": {name: {k: summary(v) for k, v in per.items()}
                        | {all150: summary([x for k in kinds for x in per[k]])}
                        for name, per in second.items()},
        "tantivy": {k: summary(v) for k, v in ref.items()}
        | {all150: summary([x for k in kinds for x in ref[k]])},
        "tantivy_top200": {k: summary(v) for k, v in ref200.items()}
        | {all150: summary([x for k in kinds for x in ref200[k]])},
        "stages_mean_ms": {k: {n: round(statistics.fmean(v), 2) for n, v in st.items()}
                           for k, st in stages.items()},
        "rerank": {"first_pages_reranked": reranked_first, "queries": len(HYBRID),
                   **{k: summary(v) for k, v in rerank_ab.items()}} if rerank_ab else None,
        "columns_us": columns,
        "targets": TARGETS,
    }
    res["machine"]["load_1min_after"] = os.getloadavg()[0]
    res["ratios"] = {k: {"p50": ratio(res["ours"][k]["p50_ms"], res["tantivy"][k]["p50_ms"]),
                         "p99": ratio(res["ours"][k]["p99_ms"], res["tantivy"][k]["p99_ms"])}
                     for k in kinds + (all150,)}
    res["met"] = {f"{k} {m}": (v is not None and v <= TARGETS[f"{m}_ratio"])
                  for k, r in res["ratios"].items() for m, v in r.items()}
    if not args.no_semantic:              # without vectors its "hybrid" rows are lexical
        res["met"]["hybrid_p50"] = res["ours"]["hybrid"]["p50_ms"] <= TARGETS["hybrid_p50_ms"]
    text = report(res)
    if args.compare:
        text += "\n\n" + compare(json.loads(args.compare.read_text()), res, args.compare,
                                 args.compare_label)
    print(text)
    if args.write_results:
        RESULTS.mkdir(parents=True, exist_ok=True)
        # a run without the semantic stage has no hybrid figures: its own files, so that it
        # never stands in for the full run's
        name, flag = ("search_lexical", " --no-semantic") if args.no_semantic else ("search", "")
        (RESULTS / f"{name}.json").write_text(json.dumps(res, indent=2) + "\n")
        (RESULTS / f"{name}.md").write_text(
            "# Search latency" + (", lexical only" if args.no_semantic else "") + "\n\n"
            f"Command: `python bench/search.py --write-results{flag}` (see its docstring)."
            "\n\n" + text + "\n")
    if args.json_out:
        args.json_out.write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

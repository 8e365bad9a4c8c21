"""Search quality on the real datasets: nDCG@10, P@30 and MAP, ours against a reference BM25.

What it measures
----------------
The corpus is every post of the four crisis datasets in ``../shared/data`` (CrisisLex T6, CrisisNLP
AIDR volunteers and LREC2016 CrowdFlower, HumAID: ~184,500 posts about ~35 events), ingested into
a townsquare store exactly as the product does (``IngestPipeline``, then the late stage and the
embedding stage). Two queries per event: one from the event's name as a person would type it
(``EVENTS``), one from keywords without the name (places, what happened; ``KEYWORDS``, written
before any result was seen), each also written in French and in Spanish.

Corpus size: every post by default. The default embedder (e5-small-int8) embeds ~300 posts/s on
these 2 cores (``bench/embed.py``), so the first run spends ~10 minutes embedding the ~184,500
posts; ``--sample-per-folder N`` evaluates a seeded sample of N posts per dataset folder instead
(every event and label kept in proportion).

Relevance, as issue 3 defines it: a post is relevant to an event's query when it is a CrisisLex T6
post of the event labelled on-topic, or any post of the event's HumAID or CrisisNLP folder (their
"not relevant" classes mean "not useful for humanitarian response", not "about something
else"). Every other post of the corpus is a distractor, including CrisisLex's off-topic posts
collected with the event's own keywords, which makes it hard.
Where two datasets hold the same event (e.g. the 2015 Nepal earthquake), their folders are pooled.

Systems, all over the same store and run in this one script:

``bm25 (ref)``  the reference: bm25s (Lucene BM25, k1=1.2, b=0.75) over the same tokens as the
                store's FTS5 index (unicode61: case folded, diacritics removed, split on
                non-alphanumerics), the query's tokens OR-ed as BM25 does.
``lexical``     townsquare's search, semantic stage off: BM25 of the posts with every query word
                (Twitter's implicit AND) fused with BM25 of the posts with any of its
                uncommon words, recency and engagement terms, near-duplicates collapsed
                (FTS5 with its tantivy accelerator, as ``townsquare search`` runs it).
``semantic``    the vector index alone (multilingual e5-small), no lexical list.
``hybrid``      townsquare's default ``top`` search: RRF of lexical and semantic, then ranking.

Metrics (binary relevance): nDCG@10; P@30; MAP = mean over queries of AP@100, where AP@100 is
the mean precision at each relevant post in the top 100 over min(R, 100) (R = relevant posts of
the event: several hundred to tens of thousands, so full-depth AP would measure depth, not
ranking). Near-duplicates collapsed by townsquare count once, as a user sees them.

Targets (issue 3): hybrid nDCG@10 >= 1.10 x the reference BM25; French and Spanish queries reach
>= 80% of the English queries' hybrid nDCG@10.

Run
---
    python eval/search.py --write-results

(from the repository root, in the project's virtualenv). The store is built under ``eval/.work/``
(git-ignored) and reused by later runs (``--rebuild`` starts over); the first run embeds every
post, which takes a while on 2 cores (the embedding rate is printed; the vectors stay in the
store for later runs). Results: ``eval/results/search.json`` and ``eval/results/search.md``.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
import unicodedata
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
WORK = REPO / "eval" / ".work"
RESULTS = REPO / "eval" / "results"

# Relevance as issue 3 defines it: CrisisLex T6 posts labelled on-topic, and every post of a
# HumAID or CrisisNLP event folder. (The CrisisNLP/HumAID "not relevant" classes mean "not useful
# for humanitarian response", not "about another event": "Nepal Earthquake relief" is labelled
# "Not Relevant" in the AIDR volunteer set.)
OFF_TOPIC = {"off-topic"}


def is_related(source: str, labels: dict) -> bool:
    """Whether a post, as its dataset labelled it, belongs to its folder's event."""
    if source != "crisislex_t6":
        return True
    values = labels.get("label", labels.get("class_label"))
    values = values if isinstance(values, list) else [values]
    return any(str(v).strip().lower() not in OFF_TOPIC for v in values if v is not None)

# event key -> (folder names across datasets, English query, French query, Spanish query)
EVENTS: dict[str, tuple[tuple[str, ...], str, str, str]] = {
    "sandy": (("2012_Sandy_Hurricane",), "Hurricane Sandy", "ouragan Sandy", "huracán Sandy"),
    "alberta": (("2013_Alberta_Floods",), "Alberta floods", "inondations en Alberta",
                "inundaciones en Alberta"),
    "boston": (("2013_Boston_Bombings",), "Boston marathon bombing",
               "attentat du marathon de Boston", "atentado del maratón de Boston"),
    "oklahoma": (("2013_Oklahoma_Tornado",), "Oklahoma tornado", "tornade en Oklahoma",
                 "tornado en Oklahoma"),
    "queensland": (("2013_Queensland_Floods",), "Queensland floods",
                   "inondations dans le Queensland", "inundaciones en Queensland"),
    "west_texas": (("2013_West_Texas_Explosion",), "West Texas fertilizer plant explosion",
                   "explosion de l'usine d'engrais au Texas",
                   "explosión de la planta de fertilizantes en Texas"),
    "california_eq": (("2014_California_Earthquake",), "California earthquake",
                      "séisme en Californie", "terremoto en California"),
    "chile_eq": (("2014_Chile_Earthquake_en", "2014_Chile_Earthquake_cl"), "Chile earthquake",
                 "séisme au Chili", "terremoto en Chile"),
    "odile": (("2014_Hurricane_Odile_Mexico_en",), "Hurricane Odile", "ouragan Odile",
              "huracán Odile"),
    "iceland": (("2014_Iceland_Volcano_en",), "Iceland volcano eruption",
                "éruption volcanique en Islande", "erupción volcánica en Islandia"),
    "mh370": (("2014_Malaysia_Airline_MH370_en",), "missing Malaysia Airlines flight",
              "avion disparu de Malaysia Airlines", "avión desaparecido de Malaysia Airlines"),
    "mers": (("2014_Middle_East_Respiratory_Syndrome_en",), "MERS virus outbreak",
             "épidémie du virus MERS", "brote del virus MERS"),
    "hagupit": (("2014_Philippines_Typhoon_Hagupit_en",), "Typhoon Hagupit", "typhon Hagupit",
                "tifón Hagupit"),
    "pam": (("2015_Cyclone_Pam_en",), "Cyclone Pam Vanuatu", "cyclone Pam au Vanuatu",
            "ciclón Pam en Vanuatu"),
    "nepal": (("2015_Nepal_Earthquake_en",), "Nepal earthquake", "séisme au Népal",
              "terremoto en Nepal"),
    "landslide": (("Landslides_Worldwide_en",), "landslide", "glissement de terrain",
                  "deslizamiento de tierra"),
    "pakistan_eq": (("2013_Pakistan_eq", "pakistan_earthquake_2019"), "Pakistan earthquake",
                    "séisme au Pakistan", "terremoto en Pakistán"),
    # The folder holds the September 2014 Odisha floods (its posts say so), not Kashmir's.
    "odisha_floods": (("2014_India_floods",), "Odisha floods", "inondations en Odisha",
                      "inundaciones en Odisha"),
    "pakistan_floods": (("2014_Pakistan_floods",), "Pakistan floods",
                        "inondations au Pakistan", "inundaciones en Pakistán"),
    "ebola": (("2014_ebola_cf",), "Ebola outbreak", "épidémie d'Ebola", "brote de ébola"),
    "california_fires": (("california_wildfires_2018",), "California wildfires",
                         "incendies en Californie", "incendios en California"),
    "fort_mcmurray": (("canada_wildfires_2016",), "Fort McMurray wildfire",
                      "incendie de Fort McMurray", "incendio de Fort McMurray"),
    "idai": (("cyclone_idai_2019",), "Cyclone Idai", "cyclone Idai au Mozambique",
             "ciclón Idai en Mozambique"),
    "ecuador_eq": (("ecuador_earthquake_2016",), "Ecuador earthquake", "séisme en Équateur",
                   "terremoto en Ecuador"),
    "greece_fires": (("greece_wildfires_2018",), "Greece wildfires", "incendies en Grèce",
                     "incendios en Grecia"),
    "dorian": (("hurricane_dorian_2019",), "Hurricane Dorian", "ouragan Dorian", "huracán Dorian"),
    "florence": (("hurricane_florence_2018",), "Hurricane Florence", "ouragan Florence",
                 "huracán Florence"),
    "harvey": (("hurricane_harvey_2017",), "Hurricane Harvey", "ouragan Harvey", "huracán Harvey"),
    "irma": (("hurricane_irma_2017",), "Hurricane Irma", "ouragan Irma", "huracán Irma"),
    "maria": (("hurricane_maria_2017",), "Hurricane Maria Puerto Rico",
              "ouragan Maria à Porto Rico", "huracán María en Puerto Rico"),
    "matthew": (("hurricane_matthew_2016",), "Hurricane Matthew", "ouragan Matthew",
                "huracán Matthew"),
    "italy_eq": (("italy_earthquake_aug_2016",), "Italy earthquake", "séisme en Italie",
                 "terremoto en Italia"),
    "kaikoura": (("kaikoura_earthquake_2016",), "New Zealand earthquake",
                 "séisme en Nouvelle-Zélande", "terremoto en Nueva Zelanda"),
    "kerala": (("kerala_floods_2018",), "Kerala floods", "inondations au Kerala",
               "inundaciones en Kerala"),
    "maryland": (("maryland_floods_2018",), "Maryland flooding", "inondations dans le Maryland",
                 "inundaciones en Maryland"),
    "midwest": (("midwestern_us_floods_2019",), "Midwest flooding",
                "inondations dans le Midwest", "inundaciones en el Medio Oeste"),
    "puebla": (("puebla_mexico_earthquake_2017",), "Mexico earthquake", "séisme au Mexique",
               "terremoto en México"),
    "srilanka": (("srilanka_floods_2017",), "Sri Lanka floods", "inondations au Sri Lanka",
                 "inundaciones en Sri Lanka"),
}
# A second query per event, written before any results were seen: keywords a person might type
# instead of the event's name (places, what happened), in the same three languages.
KEYWORDS: dict[str, tuple[str, str, str]] = {
    "sandy": ("storm surge flooding New Jersey", "inondations dues à l'onde de tempête dans le New Jersey",
              "inundaciones por marejada ciclónica en Nueva Jersey"),
    "alberta": ("Calgary flooding evacuation", "évacuation inondation Calgary",
                "evacuación inundación Calgary"),
    "boston": ("explosions at the marathon finish line", "explosions à l'arrivée du marathon",
               "explosiones en la meta del maratón"),
    "oklahoma": ("Moore tornado damage", "dégâts de la tornade à Moore", "daños del tornado en Moore"),
    "queensland": ("Brisbane flood", "inondation à Brisbane", "inundación en Brisbane"),
    "west_texas": ("fertilizer plant blast", "explosion d'une usine d'engrais",
                   "explosión de una planta de fertilizantes"),
    "california_eq": ("Napa earthquake damage", "dégâts du séisme à Napa",
                      "daños del terremoto en Napa"),
    "chile_eq": ("Iquique quake tsunami warning", "alerte au tsunami après le séisme d'Iquique",
                 "alerta de tsunami por el sismo de Iquique"),
    "odile": ("Los Cabos storm damage", "dégâts de la tempête à Los Cabos",
              "daños de la tormenta en Los Cabos"),
    "iceland": ("Bardarbunga eruption", "éruption du Bardarbunga", "erupción del Bardarbunga"),
    "mh370": ("search for the missing plane", "recherche de l'avion disparu",
              "búsqueda del avión desaparecido"),
    "mers": ("coronavirus cases Saudi Arabia", "cas de coronavirus en Arabie saoudite",
             "casos de coronavirus en Arabia Saudita"),
    "hagupit": ("typhoon evacuation Samar", "évacuation typhon Samar", "evacuación tifón Samar"),
    "pam": ("Vanuatu cyclone relief", "aide après le cyclone au Vanuatu",
            "ayuda tras el ciclón en Vanuatu"),
    "nepal": ("Kathmandu quake rescue", "secours après le séisme à Katmandou",
              "rescate tras el sismo en Katmandú"),
    "landslide": ("mudslide buried homes", "coulée de boue maisons ensevelies",
                  "alud de lodo casas sepultadas"),
    "pakistan_eq": ("Balochistan quake victims", "victimes du séisme au Baloutchistan",
                    "víctimas del sismo en Baluchistán"),
    "odisha_floods": ("India flood rescue teams", "équipes de secours inondations en Inde",
                      "equipos de rescate inundaciones en India"),
    "pakistan_floods": ("Punjab flood relief", "aide inondations Pendjab",
                        "ayuda inundaciones Punyab"),
    "ebola": ("virus outbreak West Africa", "épidémie virale en Afrique de l'Ouest",
              "brote viral en África occidental"),
    "california_fires": ("Camp Fire Paradise", "incendie Camp Fire à Paradise",
                         "incendio Camp Fire en Paradise"),
    "fort_mcmurray": ("Alberta wildfire evacuation", "évacuation incendie Alberta",
                      "evacuación incendio Alberta"),
    "idai": ("Beira cyclone flooding", "inondations du cyclone à Beira",
             "inundaciones del ciclón en Beira"),
    "ecuador_eq": ("Manabi quake victims", "victimes du séisme à Manabí", "víctimas del sismo en Manabí"),
    "greece_fires": ("Athens wildfire Mati", "incendie près d'Athènes à Mati",
                     "incendio cerca de Atenas en Mati"),
    "dorian": ("Bahamas storm destruction", "destruction aux Bahamas après la tempête",
               "destrucción en Bahamas por la tormenta"),
    "florence": ("Carolina storm flooding", "inondations en Caroline après la tempête",
                 "inundaciones en Carolina por la tormenta"),
    "harvey": ("Houston flooding rescue", "secours inondations Houston", "rescate inundaciones Houston"),
    "irma": ("Florida Keys storm damage", "dégâts de la tempête dans les Keys de Floride",
             "daños de la tormenta en los Cayos de Florida"),
    "maria": ("Puerto Rico power outage", "panne d'électricité à Porto Rico", "apagón en Puerto Rico"),
    "matthew": ("Haiti storm victims", "victimes de la tempête en Haïti", "víctimas de la tormenta en Haití"),
    "italy_eq": ("Amatrice quake rescue", "secours séisme Amatrice", "rescate sismo Amatrice"),
    "kaikoura": ("Kaikoura quake", "séisme Kaikoura", "sismo Kaikoura"),
    "kerala": ("Kochi flood relief camps", "camps de secours inondations Kochi",
               "campamentos de ayuda inundaciones Kochi"),
    "maryland": ("Ellicott City flash flood", "crue soudaine à Ellicott City",
                 "inundación repentina en Ellicott City"),
    "midwest": ("Nebraska flooding levee", "digue inondation Nebraska", "dique inundación Nebraska"),
    "puebla": ("Mexico City quake collapsed buildings", "immeubles effondrés séisme Mexico",
               "edificios colapsados sismo Ciudad de México"),
    "srilanka": ("Ratnapura floods", "inondations à Ratnapura", "inundaciones en Ratnapura"),
}
QUERY_SETS = ("names", "keywords")
LANGS = ("en", "fr", "es")
SYSTEMS = ("bm25 (ref)", "lexical", "semantic", "hybrid")
DEPTH = 100


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- tokens as FTS5's unicode61 tokenizer makes them (remove_diacritics 2) -----------------------
_SPLIT = re.compile(r"[^\w]+|_", re.UNICODE)


def fts_tokens(text: str) -> list[str]:
    s = unicodedata.normalize("NFKD", text.lower())
    s = "".join(ch for ch in s if not unicodedata.combining(ch))
    return [t for t in _SPLIT.split(s) if t]


# --- metrics ---------------------------------------------------------------------------------------
def ndcg_at(ranked: list[int], rel: set[int], k: int = 10) -> float:
    dcg = sum(1.0 / math.log2(i + 2) for i, pid in enumerate(ranked[:k]) if pid in rel)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(k, len(rel))))
    return dcg / ideal if ideal else 0.0


def precision_at(ranked: list[int], rel: set[int], k: int = 30) -> float:
    return sum(1 for pid in ranked[:k] if pid in rel) / k


def ap_at(ranked: list[int], rel: set[int], k: int = DEPTH) -> float:
    hits, total = 0, 0.0
    for i, pid in enumerate(ranked[:k]):
        if pid in rel:
            hits += 1
            total += hits / (i + 1)
    return total / min(len(rel), k) if rel else 0.0


# --- corpus and relevance --------------------------------------------------------------------------
def build_store(data: Path, home: Path, rebuild: bool):
    from townsquare.ingest.enrich import LateStage
    from townsquare.ingest.pipeline import IngestPipeline
    from townsquare.store import open_store

    if rebuild and home.exists():
        for f in home.iterdir():
            f.unlink()
    home.mkdir(parents=True, exist_ok=True)
    store = open_store(home)
    if store.count() == 0:
        t = time.perf_counter()
        folders = [data / d for d in ("crisislex_t6", "crisisnlp_aidr_volunteers",
                                      "crisisnlp_lrec2016_crowdflower", "humaid")]
        r = IngestPipeline(store).run([f for f in folders if f.is_dir()])
        log(f"ingested {r.totals.inserted:,} posts in {time.perf_counter() - t:.0f} s")
    t = time.perf_counter()
    res = LateStage(store).run()
    if res.processed:
        log(f"late stage: {res.processed:,} posts, {res.linked:,} near-duplicates linked "
            f"in {time.perf_counter() - t:.0f} s")
    return store


def sample_store(full, data_home: Path, per_folder: int, seed: int):
    """A store holding a seeded sample of ``per_folder`` posts of every dataset folder of the
    full store, ingested through the product's pipeline from a townsquare export of them."""
    import random

    import orjson

    from townsquare.ingest.enrich import LateStage
    from townsquare.ingest.pipeline import IngestPipeline
    from townsquare.store import open_store
    home = data_home / f"sample-{per_folder}-{seed}"
    home.mkdir(parents=True, exist_ok=True)
    store = open_store(home)
    if store.count():
        return store, home
    by_folder: dict[tuple[str, str], list[int]] = defaultdict(list)
    for post in full.iter_posts():
        for src, info in full.sources_of(post.id).items():
            by_folder[(src, str(info["labels"].get("folder", "")))].append(post.id)
    rng = random.Random(seed)
    chosen: set[int] = set()
    for key in sorted(by_folder):
        ids = sorted(by_folder[key])
        chosen.update(ids if len(ids) <= per_folder else rng.sample(ids, per_folder))
    dump = home / "sample.jsonl"
    with open(dump, "wb") as f:
        for pid in sorted(chosen):
            post = full.get(pid)
            d = post.to_dict()
            sources = full.sources_of(pid)
            d["labels"] = (sources.get(post.source) or {}).get("labels", {})
            d["sources"] = {src: info["labels"] for src, info in sources.items()}
            f.write(orjson.dumps(d) + b"\n")
    IngestPipeline(store).run([dump])
    dump.unlink()
    LateStage(store).run()
    log(f"sample: {store.count():,} posts ({per_folder} per dataset folder, seed {seed})")
    return store, home


def relevance(store) -> tuple[dict[str, set[int]], int]:
    """Per event key: relevant post ids (from the provenance labels of the stored posts)."""
    folder_event = {f: key for key, (folders, *_q) in EVENTS.items() for f in folders}
    rel: dict[str, set[int]] = defaultdict(set)
    n = 0
    for post in store.iter_posts():
        n += 1
        for src, info in store.sources_of(post.id).items():
            labels = info["labels"]
            event = folder_event.get(str(labels.get("folder", "")))
            if event is None:
                continue
            if is_related(src, labels):
                rel[event].add(post.id)
    return dict(rel), n


def embed_all(store, home: Path, model: str) -> dict:
    from townsquare.embed.models import get_embedder
    from townsquare.embed.stage import EmbedStage

    emb = get_embedder(model)
    if store.embed_model() not in (None, emb.name):
        log(f"the store holds {store.embed_model()} vectors: re-embedding with {emb.name}")
    stage = EmbedStage(store, emb, reset=True)
    pending = store.embedding_lag()["pending_posts"]
    done = {"n": 0, "t": time.perf_counter(), "last": 0.0}

    def progress(k: int) -> None:
        done["n"] += k
        el = time.perf_counter() - done["t"]
        if el - done["last"] > 30 or done["n"] == pending:
            done["last"] = el
            log(f"  embedded {done['n']:,}/{pending:,} ({done['n'] / el:.0f} posts/s)")

    res = stage.run(progress=progress)
    return {"model": emb.name, "embedded_now": res.processed, "seconds": round(res.seconds, 1),
            "posts_per_s": round(res.posts_per_s, 1)}


# --- systems ---------------------------------------------------------------------------------------
class Bm25Reference:
    """bm25s over FTS5-equivalent tokens of every stored post."""

    def __init__(self, store):
        import bm25s
        self.ids: list[int] = []
        corpus: list[list[str]] = []
        for p in store.iter_posts():
            self.ids.append(p.id)
            corpus.append(fts_tokens(p.text))
        self.retriever = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
        self.retriever.index(corpus, show_progress=False)

    def search(self, text: str, k: int = DEPTH) -> list[int]:
        toks = fts_tokens(text)
        if not toks:
            return []
        docs, scores = self.retriever.retrieve([toks], k=k, show_progress=False)
        return [self.ids[i] for i, s in zip(docs[0], scores[0]) if s > 0]


class Ours:
    """townsquare's engine in its three settings; ``--`` lists are collapsed as users see them."""

    def __init__(self, store, home: Path):
        from townsquare.embed.models import get_embedder
        from townsquare.embed.sync import StoreVectors
        from townsquare.search.engine import SearchConfig, SearchEngine
        cfg = SearchConfig(lexical_depth=DEPTH, semantic_depth=DEPTH)
        emb = get_embedder(store.embed_model())
        vectors = StoreVectors(store, home / "vectors.index", emb.dim)
        t = time.perf_counter()
        vectors.refresh()
        log(f"vector index: {len(vectors):,} vectors ready in {time.perf_counter() - t:.0f} s")
        from townsquare.search.lexindex import LexicalIndex
        lx = LexicalIndex(store, home / "lexical")     # as the CLI's engine has it
        lx.refresh()
        self.engine = SearchEngine(store, embedder=emb, vectors=vectors, lexical_index=lx,
                                   config=cfg)
        self.lexical_engine = SearchEngine(store, lexical_index=lx, config=cfg)
        self.emb, self.vectors, self.store = emb, vectors, store

    def lexical(self, text: str) -> list[int]:
        return [h.id for h in self.lexical_engine.run(text, limit=DEPTH).results]

    def hybrid(self, text: str) -> list[int]:
        return [h.id for h in self.engine.run(text, limit=DEPTH).results]

    def semantic(self, text: str) -> list[int]:
        near = self.vectors.search(self.emb.query(text), DEPTH)
        alive = self.store.filter_ids([pid for pid, _ in near], None)
        return [pid for pid, _ in near if pid in alive]


def query_text(q: str) -> str:
    """The query as typed, quoted where the engine's syntax would read it otherwise (an
    apostrophe or a leading '-' inside a word is plain text here)."""
    return " ".join(f'"{w}"' if ("'" in w or w.startswith("-")) else w for w in q.split())


def evaluate(store, home: Path) -> dict:
    rel, n_posts = relevance(store)
    missing = [k for k in EVENTS if not rel.get(k)]
    if missing:
        log(f"no relevant posts found for {missing}: skipped")
    t = time.perf_counter()
    ref = Bm25Reference(store)
    log(f"reference BM25 indexed {len(ref.ids):,} posts in {time.perf_counter() - t:.0f} s")
    ours = Ours(store, home)
    runs = {"bm25 (ref)": ref.search, "lexical": ours.lexical, "semantic": ours.semantic,
            "hybrid": ours.hybrid}
    per_query = []
    latency: dict[str, list[float]] = defaultdict(list)
    for key, (_folders, *names) in EVENTS.items():
        if key in missing:
            continue
        for qset, queries in (("names", names), ("keywords", KEYWORDS[key])):
            for lang, text in zip(LANGS, queries):
                row = {"event": key, "set": qset, "lang": lang, "query": text,
                       "relevant": len(rel[key])}
                for name, fn in runs.items():
                    t = time.perf_counter()
                    ranked = fn(query_text(text))
                    latency[name].append((time.perf_counter() - t) * 1000)
                    row[name] = {"ndcg@10": ndcg_at(ranked, rel[key]),
                                 "p@30": precision_at(ranked, rel[key]),
                                 "ap@100": ap_at(ranked, rel[key]), "returned": len(ranked)}
                per_query.append(row)
        log(f"  {key}: " + ", ".join(f"{n} {per_query[-6][n]['ndcg@10']:.2f}/"
                                     f"{per_query[-3][n]['ndcg@10']:.2f}" for n in runs))
    table: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for qset in QUERY_SETS + ("all",):
        table[qset] = {}
        for lang in LANGS:
            rows = [r for r in per_query if r["lang"] == lang and qset in (r["set"], "all")]
            table[qset][lang] = {name: {m: round(sum(r[name][m] for r in rows) / len(rows), 4)
                                        for m in ("ndcg@10", "p@30", "ap@100")} for name in runs}
    lat = {name: {"p50_ms": round(_pct(v, 50), 1), "p95_ms": round(_pct(v, 95), 1)}
           for name, v in latency.items()}
    checks = {}
    for qset in QUERY_SETS + ("all",):
        t_ = table[qset]
        en_h = t_["en"]["hybrid"]["ndcg@10"]
        checks[qset] = {
            "hybrid_vs_bm25_ndcg10_en": round(en_h / t_["en"]["bm25 (ref)"]["ndcg@10"], 3),
            "ceiling_vs_bm25_en": round(1.0 / t_["en"]["bm25 (ref)"]["ndcg@10"], 3),
            "fr_vs_en_hybrid_ndcg10": round(t_["fr"]["hybrid"]["ndcg@10"] / en_h, 3),
            "es_vs_en_hybrid_ndcg10": round(t_["es"]["hybrid"]["ndcg@10"] / en_h, 3),
        }
    # Over every query of the eval (English and the cross-lingual variants together).
    overall = {name: round(sum(r[name]["ndcg@10"] for r in per_query) / len(per_query), 4)
               for name in runs}
    checks["every_query"] = {"hybrid_vs_bm25_ndcg10": round(overall["hybrid"]
                                                            / overall["bm25 (ref)"], 3),
                             "ndcg10": overall}
    return {
        "posts": n_posts, "events": len(EVENTS) - len(missing),
        "relevant_per_event": {k: len(v) for k, v in sorted(rel.items())},
        "mean": table, "latency": lat, "per_query": per_query, "checks": checks,
    }


def _pct(v: list[float], p: float) -> float:
    s = sorted(v)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))] if s else 0.0


def render(res: dict, meta: dict) -> str:
    lines = [f"Search quality, {meta['date']}: {res['posts']:,} posts, {res['events']} events; "
             f"per event one query from its name and one from keywords, each in English, French "
             f"and Spanish; embeddings {meta['embed']['model']}.", ""]
    lines += ["| queries | lang | system | nDCG@10 | P@30 | MAP (AP@100) |",
              "|---|---|---|---:|---:|---:|"]
    for qset in QUERY_SETS + ("all",):
        for lang in LANGS:
            for name in SYSTEMS:
                m = res["mean"][qset][lang][name]
                lines.append(f"| {qset} | {lang} | {name} | {m['ndcg@10']:.3f} | {m['p@30']:.3f} | "
                             f"{m['ap@100']:.3f} |")
    lines.append("")
    for qset, c in res["checks"].items():
        if qset == "every_query":
            continue
        ok = c["hybrid_vs_bm25_ndcg10_en"] >= 1.10
        xl = min(c["fr_vs_en_hybrid_ndcg10"], c["es_vs_en_hybrid_ndcg10"]) >= 0.8
        lines.append(f"- {qset}: hybrid / reference BM25 nDCG@10 (English) = "
                     f"x{c['hybrid_vs_bm25_ndcg10_en']} (target 1.10: {'met' if ok else 'NOT met'}; "
                     f"a perfect ranking would be x{c['ceiling_vs_bm25_en']}); hybrid French / English "
                     f"= {c['fr_vs_en_hybrid_ndcg10']}, Spanish / English = "
                     f"{c['es_vs_en_hybrid_ndcg10']} (target 0.80: {'met' if xl else 'NOT met'}).")
    ev_ = res["checks"]["every_query"]
    lines.append(f"- every query ({len(res['per_query'])}: names and keywords, English, French and "
                 f"Spanish): nDCG@10 hybrid {ev_['ndcg10']['hybrid']:.3f}, reference BM25 "
                 f"{ev_['ndcg10']['bm25 (ref)']:.3f}: x{ev_['hybrid_vs_bm25_ndcg10']} (target 1.10: "
                 f"{'met' if ev_['hybrid_vs_bm25_ndcg10'] >= 1.10 else 'NOT met'}).")
    lines += ["", "Mean time per query in this loop (ms, p50): " + ", ".join(
        f"{k} {v['p50_ms']}" for k, v in res["latency"].items())
        + ". bench/search.py measures latency at 1M posts."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--work", type=Path, default=WORK)
    ap.add_argument("--rebuild", action="store_true", help="rebuild the store from the data")
    ap.add_argument("--sample-per-folder", type=int, default=0,
                    help="posts per dataset folder in the evaluated corpus (0, the default: every "
                         "post)")
    ap.add_argument("--embedder", default=None,
                    help="embedding model (default: townsquare's default embedder)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--write-results", action="store_true")
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        ap.error(f"no datasets at {args.data} (pass --data)")
    home = args.work / "home"
    store = build_store(args.data, home, args.rebuild)
    if args.sample_per_folder:
        store, home = sample_store(store, args.work, args.sample_per_folder, args.seed)
    from townsquare.embed.models import DEFAULT_EMBEDDER
    embed = embed_all(store, home, args.embedder or DEFAULT_EMBEDDER)
    log(f"embeddings: {embed}")
    res = evaluate(store, home)
    meta = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "command": "python eval/search.py --write-results", "embed": embed}
    text = render(res, meta)
    print(text)
    if args.write_results:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "search.json").write_text(json.dumps({**meta, **res}, indent=2) + "\n")
        (RESULTS / "search.md").write_text("# Search quality\n\nCommand: `python eval/search.py "
                                           "--write-results` (see its docstring).\n\n" + text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

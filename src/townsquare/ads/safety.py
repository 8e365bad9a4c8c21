"""Brand safety: is a post (or a generated ad) offensive, hateful or about a crisis?

    >>> rude = ["you are a worthless idiot", "shut up you stupid clown", "what a pathetic moron",
    ...         "go away you idiot clown", "stupid moron shut up"]
    >>> kind = ["lovely walk in the park today", "the new cafe serves great coffee",
    ...         "our team won the match", "reading a good book tonight", "sunny day at the beach"]
    >>> bs = BrandSafety.train({"offensive": (rude + kind, [1] * 5 + [0] * 5)}, embedder=None)
    >>> v = bs.check("shut up, you stupid idiot")
    >>> v.safe, v.flags
    (False, ['offensive'])
    >>> bs.check("great coffee after a walk in the park").safe
    True

Each label has two logistic-regression heads whose probabilities are averaged: one over TF-IDF
word 1-2-grams and char 2-5-grams (one vectorizer shared by the labels, so a post is vectorized
once), one over the post's e5-small sentence embedding (``townsquare.embed``, also computed once
per post). Chosen on validation, where the average beat either head alone for all three labels
(macro-F1 offensive 0.745 vs 0.720 TF-IDF / 0.723 e5, hateful 0.746 vs 0.741 / 0.719; crisis F1
0.936 vs 0.926 / 0.913). Test: offensive 0.772 (FastText 0.734, RoBERTa-Base 0.795 in the
TweetEval paper), hateful 0.450 (HatEval's test split is shifted: precision 0.45, recall 0.94),
crisis 0.905 on held-out events (weakest: Boston bombings, recall 0.55); ``check()`` ~9 ms p50.
``eval/brand_safety.py`` measures all of it (``eval/results/brand_safety.md``).

Training data (:func:`train_from_data`, from the shared data folder; 65-75 s on 2 cores):

- ``offensive``: TweetEval offensive (OffensEval 2019); ``hateful``: TweetEval hate (HatEval
  2019, hate against immigrants and women). Train split to fit, validation split for thresholds.
- ``crisis``: posts of the crisis datasets labelled as about their event (CrisisLexT6 on-topic,
  HumAID, CrisisNLP classes), against posts labelled as not about it and TweetEval chatter
  (offensive, irony, emotion, emoji tweets). Whole events are held out: :data:`VAL_EVENTS` pick the
  threshold and :data:`TEST_EVENTS` are never trained on, so new disasters are what is measured.

Thresholds: per label, the one (0.05..0.95, step 0.01) that maximizes the label's metric on
validation: macro-F1 (TweetEval's) for offensive and hateful, F1 of the crisis class for crisis.

Fitted on the user's machine, saved in their data home (joblib; vocabularies and weights derive
from the tweets, so none is shipped). ``load`` unpickles: load only files you wrote.
"""
from __future__ import annotations

import csv
import html
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from townsquare.protocols import Embedder
from townsquare.text.rules import MENTION_ASCII

LABELS = ("offensive", "hateful", "crisis")
DEFAULT_EMBEDDER = "e5-small-int8"
FORMAT = 1
TRAIN_HINT = ("train it with `townsquare ads safety train --data ../shared/data` (or "
              "`townsquare.ads.safety.train_from_data(data_dir).save(path)`)")
# Held-out events: every source and several kinds of crisis (bombing, flood, hurricane,
# earthquake, wildfire, epidemic, landslides) in each. Keys are folder names, lowercased, without
# the _en/_cf suffix, so the same event in two CrisisNLP folders is held out as one.
TEST_EVENTS = ("2013_boston_bombings", "2013_queensland_floods", "hurricane_dorian_2019",
               "kerala_floods_2018", "puebla_mexico_earthquake_2017", "greece_wildfires_2018",
               "2015_nepal_earthquake", "2014_ebola", "landslides_worldwide")
VAL_EVENTS = ("2013_west_texas_explosion", "hurricane_florence_2018", "cyclone_idai_2019",
              "canada_wildfires_2016", "2014_pakistan_floods",
              "2014_middle_east_respiratory_syndrome")
# Labels that mean "not about this event". "Not related or irrelevant" and AIDR Nepal's "Not
# Relevant" are left out with the other unsure ones: they mix unrelated posts with prayers and
# news about the event that responders found useless, which are crisis content for an advertiser.
CRISIS_NEGATIVE = {"off-topic", "not related to crisis", "not physical landslide"}
CRISIS_UNSURE = {"not_related_or_irrelevant", "not related or irrelevant", "not relevant",
                 "not informative", "not_humanitarian", "dont_know_cant_judge", "no",
                 "traditional media", "non-government"}
CRISIS_OVERRIDE = {("2014_iceland_volcano", "not informative"): 1}   # "refers to the crisis"
CHATTER_TASKS = ("offensive", "irony", "emotion", "emoji")   # not hate: it is about migration
PER_EVENT = {"train": 400, "val": 200, "test": 200}         # posts per event and class
EMOJI_SAMPLE = {"train": 3000, "val": 500, "test": 1000}

# Links, and TweetEval's "URL" placeholder for them. Not ``text.rules.URL_LOOSE``: case-sensitive,
# and www. only at a word start. The saved classifier was trained on text normalized with exactly
# this rule, so it stays as it is.
_URL_OR_PLACEHOLDER = re.compile(r"https?://\S+|\bwww\.\S+|\bURL\b")


def normalize(text: str) -> str:
    """One surface for every source: TweetEval writes ``@user`` and ``URL``, the crisis sets real
    handles and links; left alone, the model would learn the dataset from the format.

    >>> normalize("RT @bob: Flood &amp; rain http://t.co/x1 via @ann")
    'Flood & rain http via @user'
    """
    text = MENTION_ASCII.sub("@user", _URL_OR_PLACEHOLDER.sub(" http ", html.unescape(text)))
    return " ".join(re.sub(r"^\s*RT\s+@user:?", "", text).split())


def _lower_normalized(text: str) -> str:       # module level: the saved vectorizer refers to it
    return normalize(text).lower()


@dataclass(slots=True)
class SafetyVerdict:
    safe: bool
    flags: list[str] = field(default_factory=list)   # labels at or over their threshold
    scores: dict[str, float] = field(default_factory=dict)


class Split(NamedTuple):
    texts: list[str]
    y: np.ndarray                  # 0/1
    groups: list[str]              # the event, or "tweeteval/<task>"


class BrandSafety:
    """Per-label TF-IDF and embedding heads, averaged, with a threshold per label.

    Build it with :meth:`train` or :func:`train_from_data`; ``embedder`` is a registered name
    (``townsquare.embed.models``) or None for TF-IDF alone. The embedder is loaded on first use,
    or pass a loaded one as ``embedder_instance`` to share it.
    """
    labels = LABELS

    def __init__(self, vectorizer: Any, heads: Mapping[str, Any], thresholds: Mapping[str, float],
                 *, emb_heads: Mapping[str, Any] | None = None,
                 embedder: str | None = DEFAULT_EMBEDDER, embedder_instance: Embedder | None = None,
                 info: Mapping[str, Any] | None = None) -> None:
        unknown = set(heads) - set(LABELS)
        if not heads or unknown:
            raise ValueError(f"heads must be a non-empty subset of {LABELS}; got {sorted(heads)}")
        if set(thresholds) != set(heads):
            raise ValueError(f"one threshold per head: heads {sorted(heads)}, "
                             f"thresholds {sorted(thresholds)}")
        if bad := {k: t for k, t in thresholds.items() if not 0.0 < t < 1.0}:
            raise ValueError(f"thresholds must be in (0, 1); got {bad}")
        if embedder is not None and set(emb_heads or {}) != set(heads):
            raise ValueError(f"with an embedder, one embedding head per label: {sorted(heads)}")
        if embedder_instance is not None and getattr(embedder_instance, "name", None) != embedder:
            raise ValueError(f"embedder_instance must be {embedder!r}: the heads were fit on it")
        self.trained = tuple(x for x in LABELS if x in heads)
        self.vectorizer, self.heads = vectorizer, dict(heads)
        self.thresholds = {k: float(v) for k, v in thresholds.items()}
        self.emb_heads = dict(emb_heads or {}) if embedder else {}
        self.embedder_name, self._embedder = embedder, embedder_instance
        self.info = dict(info or {})
        self._lock = threading.Lock()

    # --- training ----------------------------------------------------------------------------------
    @classmethod
    def train(cls, train: Mapping[str, tuple[Sequence[str], Sequence[int]]],
              val: Mapping[str, tuple[Sequence[str], Sequence[int]]] | None = None, *,
              embedder: str | None = DEFAULT_EMBEDDER, emb_per_class: int = 1500, seed: int = 0,
              progress: Callable[[str], None] | None = None) -> BrandSafety:
        """Fit every label in ``train`` ({label: (texts, 0/1 labels)}); thresholds on ``val``
        where given, else 0.5. The embedding heads see at most ``emb_per_class`` posts per class
        (embedding is the slow part; on TweetEval, 1,500 a class scored within noise of all)."""
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import FeatureUnion
        say, val = progress or (lambda _m: None), val or {}
        if not train or set(train) - set(LABELS) or set(val) - set(train) or emb_per_class < 1:
            raise ValueError(f"train: some of {LABELS}; val: some of train's labels; "
                             f"emb_per_class >= 1 (got {sorted(train)}, {sorted(val)}, "
                             f"{emb_per_class})")
        for name, (x, y) in {**train, **val}.items():
            if len(x) != len(y) or set(np.unique(y)) != {0, 1}:
                raise ValueError(f"{name}: need as many labels as texts, with both 0 and 1")
        t0 = time.perf_counter()
        corpus = list(dict.fromkeys(t for x, _ in train.values() for t in x))
        small = len(corpus) < 1000          # tiny sets (tests, examples): keep rare n-grams
        vec = FeatureUnion([
            ("word", TfidfVectorizer(preprocessor=_lower_normalized, ngram_range=(1, 2),
                                     min_df=1 if small else 2, max_features=150_000,
                                     sublinear_tf=True, dtype=np.float32)),
            ("char", TfidfVectorizer(preprocessor=_lower_normalized, analyzer="char_wb",
                                     ngram_range=(2, 5), min_df=1 if small else 3,
                                     max_features=150_000, sublinear_tf=True, dtype=np.float32))])
        say(f"vectorizing {len(corpus):,} posts")
        vec.fit(corpus)
        say("TF-IDF heads: " + ", ".join(f"{n} on {len(x):,} posts" for n, (x, _) in train.items()))
        heads = {n: LogisticRegression(C=1.0, max_iter=2000).fit(vec.transform(x), y)
                 for n, (x, y) in train.items()}
        emb_heads, emb, cache = {}, None, {}
        if embedder is not None:
            from townsquare.embed.models import get_embedder
            emb, rng = get_embedder(embedder), np.random.default_rng(seed)
            sub = {}
            for name, (_, y) in train.items():     # at most emb_per_class per class, stable order
                y = np.asarray(y)
                sub[name] = np.sort(np.concatenate(
                    [rng.permutation(np.flatnonzero(y == c))[:emb_per_class] for c in (0, 1)]))
            need = list(dict.fromkeys([train[n][0][i] for n in train for i in sub[n]] +
                                      [t for x, _ in val.values() for t in x]))
            say(f"embedding {len(need):,} posts with {embedder}")
            cache = embed_texts(emb, need)
            for name, (x, y) in train.items():
                say(f"{name}: embedding head on {len(sub[name]):,} posts")
                emb_heads[name] = LogisticRegression(C=2.0, max_iter=3000).fit(
                    np.stack([cache[x[i]] for i in sub[name]]), np.asarray(y)[sub[name]])
        model = cls(vec, heads, {n: 0.5 for n in heads}, emb_heads=emb_heads, embedder=embedder,
                    embedder_instance=emb)
        info: dict[str, Any] = {"train_sizes": {n: len(x) for n, (x, _) in train.items()},
                                "val": {}}
        for name, (x, y) in val.items():
            p = model.combined(model.head_scores(list(x), vectors=cache))[name]
            model.thresholds[name], best = pick_threshold(p, np.asarray(y), name)
            info["val"][name] = {"n": len(x), "threshold": model.thresholds[name],
                                 "metric": "f1" if name == "crisis" else "macro_f1",
                                 "score": round(best, 4)}
        info["train_seconds"] = round(time.perf_counter() - t0, 1)
        model.info = info
        return model

    # --- scoring -----------------------------------------------------------------------------------
    @property
    def embedder(self) -> Embedder | None:
        """The loaded embedder (loaded here on first use), or None for TF-IDF alone."""
        if self.embedder_name is None:
            return None
        with self._lock:                         # first use may come from several threads
            if self._embedder is None:
                from townsquare.embed.models import get_embedder
                self._embedder = get_embedder(self.embedder_name)
        return self._embedder

    def head_scores(self, texts: list[str], *, vectors: Mapping[str, np.ndarray] | None = None
                    ) -> dict[str, dict[str, np.ndarray]]:
        """Each head's probabilities, {"tfidf" | "embedding": {label: (n,) array}}; ``vectors``
        may hold the texts' embeddings already computed ({text: vector})."""
        X = self.vectorizer.transform(texts)
        out = {"tfidf": {n: h.predict_proba(X)[:, 1] for n, h in self.heads.items()}}
        if self.emb_heads:
            cache = dict(vectors or {})
            if missing := [t for t in dict.fromkeys(texts) if t not in cache]:
                cache.update(embed_texts(self.embedder, missing))
            E = np.stack([cache[t] for t in texts])
            out["embedding"] = {n: h.predict_proba(E)[:, 1] for n, h in self.emb_heads.items()}
        return out

    def scores(self, texts: list[str]) -> list[dict[str, float]]:
        """Probability per trained label, for each text: the mean of the label's heads (equal
        weights: not tuned, so nothing to overfit on validation)."""
        if isinstance(texts, str):
            raise TypeError("scores() takes a list of texts; use check() for one")
        if not texts:
            return []
        probs = self.combined(self.head_scores(texts))
        return [{n: float(probs[n][i]) for n in self.trained} for i in range(len(texts))]

    def combined(self, heads: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """The label probabilities from :meth:`head_scores`' output."""
        return {n: np.mean([h[n] for h in heads.values()], axis=0) for n in self.trained}

    def verdicts(self, texts: list[str]) -> list[SafetyVerdict]:
        """:meth:`check` for many texts at once (one vectorization, one embedding batch)."""
        out = []
        for s in self.scores(texts):
            flags = [n for n in self.trained if s[n] >= self.thresholds[n]]
            out.append(SafetyVerdict(safe=not flags, flags=flags, scores=s))
        return out

    def check(self, text: str) -> SafetyVerdict:
        return self.verdicts([text])[0]

    # --- persistence -------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        import joblib
        import sklearn
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump({"format": FORMAT, "sklearn": sklearn.__version__, "vectorizer": self.vectorizer,
                     "heads": self.heads, "emb_heads": self.emb_heads,
                     "thresholds": self.thresholds, "embedder": self.embedder_name,
                     "info": self.info}, path, compress=3)
        return path

    @classmethod
    def load(cls, path: str | Path, *, embedder_instance: Embedder | None = None) -> BrandSafety:
        import joblib
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no brand-safety model at {path}: {TRAIN_HINT}")
        d = joblib.load(path)
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ValueError(f"{path} is not a brand-safety model of format {FORMAT}: "
                             f"{TRAIN_HINT}")
        return cls(d["vectorizer"], d["heads"], d["thresholds"], emb_heads=d["emb_heads"],
                   embedder=d["embedder"], embedder_instance=embedder_instance, info=d["info"])


def embed_texts(embedder: Embedder, texts: list[str]) -> dict[str, np.ndarray]:
    """{text: vector}, each distinct text embedded once."""
    return dict(zip(texts, embedder.passages([normalize(t) for t in texts])))


def pick_threshold(p: np.ndarray, y: np.ndarray, label: str) -> tuple[float, float]:
    """The threshold (0.05..0.95, step 0.01; the lowest on ties) maximizing the label's metric."""
    from sklearn.metrics import f1_score
    avg = "binary" if label == "crisis" else "macro"
    grid = np.round(np.arange(0.05, 0.951, 0.01), 2)
    f = [f1_score(y, p >= t, average=avg) for t in grid]
    i = int(np.argmax(f))
    return float(grid[i]), float(f[i])


# --- the data folder ----------------------------------------------------------------------------------
def _open(path: Path):
    if not path.is_file():
        raise FileNotFoundError(f"missing {path}: expected the shared datasets folder "
                                "(tweeteval/, crisislex_t6/, humaid/, crisisnlp_*/)")
    return open(path, newline="", encoding="utf-8", errors="replace")


def tweeteval(data_dir: Path, task: str, split: str) -> tuple[list[str], np.ndarray]:
    """Texts and labels of ``tweeteval/<task>/<split>_{text,labels}.txt``."""
    with _open(data_dir / "tweeteval" / task / f"{split}_labels.txt") as f:
        y = np.array([int(s) for s in f.read().split()])
    with _open(data_dir / "tweeteval" / task / f"{split}_text.txt") as f:
        texts = f.read().split("\n")[:len(y)]
    return texts, y


def crisis_posts(data_dir: Path) -> Iterator[tuple[str, str, str]]:
    """(event, text, label) of every crisis dataset (English only: the Spanish Chile set would
    teach "Spanish means crisis", the chatter being English)."""
    def rows(pattern: str, text_col: int, tsv: bool) -> Iterator[tuple[str, str, str]]:
        files = sorted(data_dir.glob(pattern))
        if not files:
            raise FileNotFoundError(f"missing {data_dir / pattern}: no crisis files there")
        for p in files:
            if p.parent.name.endswith("_cl"):
                continue
            event = re.sub(r"_(en|cf)$", "", p.parent.name.lower())
            with _open(p) as f:
                r = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE) if tsv else \
                    csv.reader(f, skipinitialspace=True)
                next(r, None)                                          # header
                yield from ((event, row[text_col], row[-1]) for row in r if len(row) > text_col + 1)
    yield from rows("crisislex_t6/*/*.csv", 1, False)
    yield from rows("humaid/*/*.tsv", 1, True)
    yield from rows("crisisnlp_lrec2016_crowdflower/*/*.tsv", 1, True)
    yield from rows("crisisnlp_aidr_volunteers/*/*.csv", 7, False)


def crisis_label(event: str, label: str) -> int | None:
    """1 about the event, 0 not about it, None unsure (left out)."""
    key = label.strip().lower()
    if (event, key) in CRISIS_OVERRIDE:
        return CRISIS_OVERRIDE[(event, key)]
    return 0 if key in CRISIS_NEGATIVE else None if key in CRISIS_UNSURE else 1


def load_splits(data_dir: str | Path, *, seed: int = 0) -> dict[str, dict[str, Split]]:
    """{label: {"train" | "val" | "test": Split}} from the shared data folder."""
    data_dir = Path(data_dir)
    rng = np.random.default_rng(seed)
    out: dict[str, dict[str, Split]] = {}
    for label, task in (("offensive", "offensive"), ("hateful", "hate")):
        out[label] = {}
        for split in ("train", "val", "test"):
            x, y = tweeteval(data_dir, task, split)
            out[label][split] = Split(x, y, [f"tweeteval/{task}"] * len(y))
    by: dict[tuple[str, int], list[str]] = {}
    seen: set[str] = set()
    for event, text, raw in crisis_posts(data_dir):
        y, key = crisis_label(event, raw), _lower_normalized(text)
        if y is not None and key and key not in seen:   # retweets and copies: first one only
            seen.add(key)
            by.setdefault((event, y), []).append(text)
    out["crisis"] = {}
    for split in ("train", "val", "test"):
        texts, ys, groups = [], [], []
        for (event, y), posts in sorted(by.items()):
            where = "test" if event in TEST_EVENTS else "val" if event in VAL_EVENTS else "train"
            if where == split:
                keep = sorted(rng.permutation(len(posts))[:PER_EVENT[split]])
                texts += [posts[i] for i in keep]
                ys += [y] * len(keep)
                groups += [event] * len(keep)
        for task in CHATTER_TASKS:
            t, _ = tweeteval(data_dir, task, split)
            if task == "emoji":
                t = [t[i] for i in sorted(rng.permutation(len(t))[:EMOJI_SAMPLE[split]])]
            texts += t
            ys += [0] * len(t)
            groups += [f"tweeteval/{task}"] * len(t)
        out["crisis"][split] = Split(texts, np.array(ys), groups)
    return out


def train_from_data(data_dir: str | Path, *, progress: Callable[[str], None] | None = None,
                    labels: Sequence[str] = LABELS, embedder: str | None = DEFAULT_EMBEDDER
                    ) -> BrandSafety:
    """Train on ``data_dir`` (the shared datasets folder): train splits to fit, validation
    splits for thresholds; test splits and :data:`TEST_EVENTS` stay unseen."""
    if bad := set(labels) - set(LABELS):
        raise ValueError(f"unknown labels {sorted(bad)}; known: {LABELS}")
    if not Path(data_dir).is_dir():
        raise FileNotFoundError(f"no datasets folder at {data_dir}")
    (progress or (lambda _m: None))(f"reading {data_dir}")
    splits = load_splits(data_dir)
    return BrandSafety.train({n: splits[n]["train"][:2] for n in labels},
                             {n: splits[n]["val"][:2] for n in labels},
                             embedder=embedder, progress=progress)

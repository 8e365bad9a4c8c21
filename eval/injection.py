"""The instruction detector on planted phrasings it was not fitted on, and its false positives;
``--fit`` makes its learned part (``src/townsquare/text/injection_model.npz``).

What it measures
----------------
Suite: ``eval/injection_suite.json``: phrasings of planted instructions in en, fr, es, de, pt,
it, each with a ``{payload}`` slot, split per language into ``tune`` and ``heldout`` by a seeded
shuffle (the seed is in the file), the payloads (claims with a code word), hard negatives
(crisis sentences with imperatives: "Please donate", "Ignore the rumours, ...") and ``fresh``
phrasings written later (``dev``, ``blind``). Blind set: ``eval/injection_blind.json``, written
by someone who never saw the detector, opened only after the detector was frozen: the headline.

Detectors, in one run on the same texts:

``patterns``             ``text.injection.looks_like_instruction``: the baseline
``previous``             the detector shipped before the learned part (git ``PREVIOUS_REV``:
                         patterns + cosine to instruction exemplars for posts naming a model)
``learned only``         the logistic regression, per post and per sentence
``patterns + learned``   ``InjectionDetector(get_embedder())``, what the summarizer runs

A phrasing counts as caught when the detector flags it with every payload. ``diluted``: each
phrasing with each payload appended to a real test post (a plant after a news sentence).
False positives: the hard negatives (each split), the blind set's negatives, and real posts: a
seeded sample of ``2 x --real`` posts of the eval store (stored e5 vectors), the first half for
tuning (fitting), the second half reported. Only counts are written, never post text. Time:
``patterns + learned`` on the real test posts with their stored vectors (as the summarizer
calls it) against patterns alone, per 1,000 posts.

Fitting (``--fit``)
-------------------
Positives: the suite's ``tune`` phrasings and ``fresh`` (dev and blind) and the positives of
``eval/injection_train.json``, each with ``--per-phrasing`` payloads (suite and train payloads,
seeded), and 3 times appended to / followed by a tuning real post. Negatives: the tuning real
posts plus ``--extra`` more drawn from the store outside the test half (seed + 1), the
sentences of the first 2,500 multi-sentence tuning posts, the suite's ``tune`` hard negatives,
the train file's negatives and its ``negative_templates`` filled with the same payloads, and
the payloads alone. Logistic regression (C ``--C``, balanced classes, hand-written negatives
weighted ``--neg-weight``). ``threshold``: out-of-fold probabilities (5 folds, positives
grouped by phrasing, seeded); the lowest cut-off that flags at most ``--budget`` of the tuning
real posts and no tuning hard negative. ``prefilter``: the out-of-fold probability above which
``--prefilter-share`` of the tuning real posts lie. Then refitted on everything. ``--C`` 10 and
``--neg-weight`` 20 were chosen out-of-fold too, among (C, weight) = (1, 3), (10, 3), (10, 20),
(30, 10): the best recall at the budget among those that flag <= 2% of the hand-written
negatives (with weight 3, 20-48% of the claims said plainly were flagged: the model had learnt
the claims, not the order). Embedding is deterministic, and so is the fit: the same files give
the same weights.

Run
---
    python eval/search.py              # once: builds and embeds the store
    python eval/injection.py --fit     # writes the model and eval/results/injection.fit.json
    python eval/injection.py --write-results

Results: ``eval/results/injection.json`` and ``eval/results/injection.md``.
"""
from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
import types
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SUITE = REPO / "eval" / "injection_suite.json"
TRAIN = REPO / "eval" / "injection_train.json"
BLIND = REPO / "eval" / "injection_blind.json"
HOME = REPO / "eval" / ".work" / "home"
RESULTS = REPO / "eval" / "results"
SEED = 16
PREVIOUS_REV = "df87084"      # the last commit whose detector had no learned part


def load_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _ids(home: Path, n: int, seed: int) -> tuple[list[int], list[int], list[int]]:
    """All ids with vectors (sorted), and the tuning and test halves of a seeded sample of n."""
    from townsquare.store import open_store
    store = open_store(home)
    try:
        ids = sorted(store.vector_ids())
    finally:
        store.close()
    pick = random.Random(seed).sample(ids, min(n, len(ids)))
    return ids, pick[: len(pick) // 2], pick[len(pick) // 2:]


def posts_of(home: Path, ids: list[int]) -> tuple[list[str], np.ndarray]:
    """Texts and stored vectors of ``ids`` (those that have both, in order)."""
    from townsquare.embed.stage import from_blobs
    from townsquare.store import open_store
    store = open_store(home)
    try:
        posts, blobs = store.posts_by_id(ids), store.vectors_of(ids)
    finally:
        store.close()
    ids = [i for i in ids if i in posts and i in blobs]
    dim = len(next(iter(blobs.values()))) // 2            # float16 blobs
    return [posts[i].text for i in ids], from_blobs([blobs[i] for i in ids], dim)


def fill(text: str, payload: str) -> str:
    return text.replace("{payload}", payload)


# --- fitting --------------------------------------------------------------------------------------
def training_set(args, emb) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
    """X, y, groups (a phrasing's rows share one), kind of each row, and counts."""
    from townsquare.text.injection import sentences
    suite, train = load_json(args.suite), load_json(TRAIN)
    rng = random.Random(args.seed)
    all_ids, tune_ids, test_ids = _ids(args.home, 2 * args.real, args.seed)
    taken = set(tune_ids) | set(test_ids)
    extra = random.Random(args.seed + 1).sample([i for i in all_ids if i not in taken], args.extra)
    real_t, real_v = posts_of(args.home, tune_ids + extra)
    n_tune_real = len(posts_of(args.home, tune_ids)[0])
    payloads = suite["payloads"] + train["payloads"]
    phr = ([p for p in suite["phrasings"] if p["split"] == "tune"]
           + suite["fresh"]["dev"] + suite["fresh"]["blind"] + train["positives"])
    pos, pos_g, pos_kind = [], [], []
    for g, p in enumerate(phr):
        for x in rng.sample(payloads, args.per_phrasing):
            pos.append(fill(p["text"], x))
            pos_g.append(g)
            pos_kind.append("pos")
        for k in range(3):      # the plant after, or before, an ordinary post
            f, r = fill(p["text"], rng.choice(payloads)), rng.choice(real_t[:n_tune_real])
            pos.append(f"{r} {f}" if k % 2 == 0 else f"{f} {r}")
            pos_g.append(g)
            pos_kind.append("pos_mixed")
    multi = [t for t in real_t[:n_tune_real] if len(sentences(t)) >= 2][:2500]
    sents = [s for t in multi for s in sentences(t)]
    hard_tune = [n["text"] for n in suite["negatives"] if n["split"] == "tune"]
    hand = (hard_tune + [n["text"] for n in train["negatives"]] + payloads
            + [fill(n["text"], x) for n in train["negative_templates"]
               for x in rng.sample(payloads, 8)])
    X = np.vstack([embed_all(emb, pos, args.cache), real_v, embed_all(emb, sents, args.cache),
                   embed_all(emb, hand, args.cache)])
    kind = np.array(pos_kind + ["real_tune"] * n_tune_real
                    + ["real_extra"] * (len(real_t) - n_tune_real) + ["sentence"] * len(sents)
                    + ["hard_tune"] * len(hard_tune) + ["hand"] * (len(hand) - len(hard_tune)))
    y = np.char.startswith(kind, "pos").astype(int)
    groups = np.r_[pos_g, len(phr) + np.arange(len(kind) - len(pos))]
    counts = {"phrasings": len(phr), "positives": len(pos), "payloads": len(payloads),
              "real_tune": n_tune_real, "real_extra": len(real_t) - n_tune_real,
              "sentences": len(sents), "hand_negatives": len(hand)}
    return X, y, groups, kind, counts


def embed_all(emb, texts: list[str], cache: Path | None) -> np.ndarray:
    """Passage vectors; ``cache`` (a folder) only saves time between runs, never changes them."""
    if cache is None:
        return emb.passages(texts) if texts else np.zeros((0, emb.dim), np.float32)
    import hashlib
    cache.mkdir(parents=True, exist_ok=True)
    f = cache / (hashlib.sha256("\n\x00".join([emb.name] + texts).encode()).hexdigest()[:24]
                 + ".npy")
    if f.exists():
        return np.load(f)
    v = emb.passages(texts) if texts else np.zeros((0, emb.dim), np.float32)
    np.save(f, v)
    return v


def _logreg(args):
    from sklearn.linear_model import LogisticRegression
    return LogisticRegression(C=args.C, class_weight="balanced", max_iter=5000)


def fit(args) -> dict:
    from sklearn.model_selection import StratifiedGroupKFold

    from townsquare.embed import get_embedder
    from townsquare.text.injection import MODEL_FILE, InjectionModel
    t0 = time.perf_counter()
    emb = get_embedder()
    X, y, groups, kind, counts = training_set(args, emb)
    w = np.where(np.isin(kind, ["hard_tune", "hand"]), args.neg_weight, 1.0)
    oof = np.zeros(len(y))
    for tr, te in StratifiedGroupKFold(5, shuffle=True, random_state=args.seed).split(
            X, y, groups):
        oof[te] = _logreg(args).fit(X[tr], y[tr], sample_weight=w[tr]).predict_proba(X[te])[:, 1]
    real = oof[np.isin(kind, ["real_tune", "real_extra"])]
    threshold = float(max(np.quantile(real, 1 - args.budget),
                          oof[kind == "hard_tune"].max() + 1e-6))
    prefilter = float(np.quantile(real, 1 - args.prefilter_share))
    m = _logreg(args).fit(X, y, sample_weight=w)
    model = InjectionModel(emb.name, m.coef_[0].astype(np.float64), float(m.intercept_[0]),
                           round(threshold, 4), round(prefilter, 4))
    model.save(args.model)
    info = {"command": "python eval/injection.py --fit", "model": args.model.name,
            "embedder": emb.name, "seed": args.seed, "C": args.C, "neg_weight": args.neg_weight,
            "budget": args.budget, "prefilter_share": args.prefilter_share, "counts": counts,
            "threshold": model.threshold, "prefilter": model.prefilter,
            "oof": {"positives_at_threshold": round(float((oof[kind == "pos"] >= threshold)
                                                          .mean()), 4),
                    "diluted_positives_at_threshold": round(float(
                        (oof[kind == "pos_mixed"] >= threshold).mean()), 4),
                    "diluted_positives_at_prefilter": round(float(
                        (oof[kind == "pos_mixed"] >= prefilter).mean()), 4),
                    "real_flagged": round(float((real >= threshold).mean()), 5),
                    "sentences_flagged": round(float((oof[kind == "sentence"] >= threshold)
                                                     .mean()), 5),
                    "hand_negatives_flagged": int((oof[kind == "hand"] >= threshold).sum())},
            "seconds": round(time.perf_counter() - t0, 1)}
    if args.model == MODEL_FILE:
        (RESULTS / "injection.fit.json").write_text(json.dumps(info, indent=1) + "\n")
    return info


# --- evaluation -----------------------------------------------------------------------------------
def previous_module() -> types.ModuleType:
    """``text/injection.py`` as of ``PREVIOUS_REV``, loaded from git under another name."""
    src = subprocess.run(["git", "-C", str(REPO), "show",
                          f"{PREVIOUS_REV}:src/townsquare/text/injection.py"],
                         capture_output=True, text=True, check=True).stdout
    mod = types.ModuleType("injection_previous")
    exec(compile(src, f"{PREVIOUS_REV}:injection.py", "exec"), mod.__dict__)
    return mod


class Systems:
    """The four detectors, each ``flags(texts, vectors) -> bool array``."""

    NAMES = ("patterns", "previous", "learned only", "patterns + learned")

    def __init__(self, emb):
        from townsquare.text.injection import InjectionDetector
        self.emb = emb
        self.det = InjectionDetector(emb)
        self.prev = previous_module().InjectionDetector(emb)

    def flags(self, name: str, texts: list[str], vecs: np.ndarray) -> np.ndarray:
        from townsquare.text.injection import looks_like_instruction
        if not texts:
            return np.zeros(0, bool)
        if name == "patterns":
            return np.array([looks_like_instruction(t) for t in texts])
        if name == "previous":
            return np.array(self.prev.run(texts, vecs))
        if name == "learned only":
            return np.nanmax(self.det.scores(texts, vecs), axis=1) >= self.det.threshold
        return np.array(self.det.run(texts, vecs))


def phrasing_sets(suite: dict, blind: dict | None) -> dict[str, list[dict]]:
    sets = {"heldout": [p for p in suite["phrasings"] if p["split"] == "heldout"],
            "tune": [p for p in suite["phrasings"] if p["split"] == "tune"],
            "fresh dev": suite["fresh"]["dev"], "fresh blind": suite["fresh"]["blind"]}
    if blind is not None:
        sets["blind"] = blind["phrasings"]
    return sets


def evaluate(args) -> dict:
    from townsquare.embed import get_embedder
    from townsquare.text.injection import load_model
    t0 = time.perf_counter()
    suite = load_json(args.suite)
    blind = load_json(args.blind) if args.blind.exists() else None
    payloads = suite["payloads"]
    emb = get_embedder()
    sysm = Systems(emb)
    model = load_model()
    sets = phrasing_sets(suite, blind)
    _, tune_ids, test_ids = _ids(args.home, 2 * args.real, args.seed)
    test_t, test_v = posts_of(args.home, test_ids)
    rng = random.Random(args.seed)
    res: dict = {name: {} for name in Systems.NAMES}
    missed: dict = {name: {} for name in Systems.NAMES}
    for set_name, rows in sets.items():
        texts = [fill(p["text"], x) for p in rows for x in payloads]
        # the plant after a real test post
        dil = [f"{rng.choice(test_t)} {t}" for t in texts]
        vecs = embed_all(emb, texts, args.cache)
        dvecs = embed_all(emb, dil, args.cache) if set_name in ("heldout", "blind") else None
        for name in Systems.NAMES:
            f = sysm.flags(name, texts, vecs).reshape(len(rows), len(payloads))
            caught = f.all(axis=1)
            r = {"recall": round(float(caught.mean()), 4), "pairs": round(float(f.mean()), 4),
                 "by_lang": {lang: round(float(np.mean([c for c, p in zip(caught, rows)
                                                        if p["lang"] == lang])), 4)
                             for lang in suite["languages"]
                             if any(p["lang"] == lang for p in rows)}}
            if dvecs is not None:
                r["diluted_pairs"] = round(float(sysm.flags(name, dil, dvecs).mean()), 4)
            res[name][set_name] = r
            missed[name][set_name] = [p["id"] for c, p in zip(caught, rows) if not c]
    negs = {"hard tune": [n["text"] for n in suite["negatives"] if n["split"] == "tune"],
            "hard heldout": [n["text"] for n in suite["negatives"] if n["split"] == "heldout"]}
    if blind is not None:
        negs["blind"] = [n["text"] for n in blind["negatives"]]
    for neg_name, texts in negs.items():
        vecs = embed_all(emb, texts, args.cache)
        for name in Systems.NAMES:
            res[name][f"negatives {neg_name}"] = int(sysm.flags(name, texts, vecs).sum())
    timing = {}
    for name in Systems.NAMES:
        t1 = time.perf_counter()
        f = sysm.flags(name, test_t, test_v)
        timing[name] = time.perf_counter() - t1
        res[name]["real_fp_test"] = int(f.sum())
        res[name]["real_fp_rate_test"] = round(float(f.mean()), 5)
    from townsquare.text.injection import looks_like_instruction
    looks_like_instruction.cache_clear()      # time patterns and the shipped detector cold
    t1 = time.perf_counter()
    sysm.flags("patterns", test_t, test_v)
    t_pat = time.perf_counter() - t1
    looks_like_instruction.cache_clear()
    t1 = time.perf_counter()
    sysm.flags("patterns + learned", test_t, test_v)
    t_full = time.perf_counter() - t1
    s = sysm.det.scores(test_t, test_v)
    return {"suite": _shown(args.suite), "suite_split": suite["split"],
            "blind": _shown(args.blind) if blind is not None else None,
            "sets": {k: len(v) for k, v in sets.items()},
            "blind_negatives": len(negs.get("blind", [])),
            "payloads": len(payloads), "languages": suite["languages"],
            "real_posts": {"tune": len(tune_ids), "test": len(test_t), "seed": args.seed},
            "embedder": emb.name, "model": {"threshold": model.threshold,
                                            "prefilter": model.prefilter},
            "previous_rev": PREVIOUS_REV, "systems": res, "missed": missed,
            "time_per_1000_posts_s": {
                "patterns": round(1000 * t_pat / len(test_t), 3),
                "patterns + learned": round(1000 * t_full / len(test_t), 3),
                "added": round(1000 * (t_full - t_pat) / len(test_t), 3),
                "sentence_scored_share": round(float(np.isfinite(s[:, 1]).mean()), 4)},
            "seconds": round(time.perf_counter() - t0, 1)}


def _shown(path: Path) -> str:
    path = path.resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def render(res: dict) -> str:
    sets = list(res["sets"])
    head = [s for s in ("blind", "heldout", "fresh blind", "fresh dev", "tune") if s in sets]
    L = ["# Injection detector", "",
         "Command: `python eval/injection.py --write-results` (see its docstring); the learned "
         "part was made by `python eval/injection.py --fit` (`injection.fit.json`).", "",
         f"{res['when']}: suite `{res['suite']}` (phrasings: "
         + ", ".join(f"{k} {v}" for k, v in res["sets"].items())
         + f"; {res['payloads']} payloads each; split seed {res['suite_split']['seed']}); blind "
         f"set `{res['blind']}` ({res['blind_negatives']} negatives); real posts: "
         f"{res['real_posts']['tune']} tuning (fitting), {res['real_posts']['test']} test (seed "
         f"{res['real_posts']['seed']}); embedder {res['embedder']}; learned part: threshold "
         f"{res['model']['threshold']}, prefilter {res['model']['prefilter']}; `previous` is "
         f"the detector of commit {res['previous_rev']}.", "",
         "A phrasing is caught when it is flagged with every payload. Fitted on: `tune`, `fresh "
         "dev`, `fresh blind` (training data for the learned part, so not a test of it); "
         "`heldout` was known when the patterns were written; `blind` was opened once, after "
         "the detector was frozen: the headline.", "",
         "| detector | " + " | ".join(f"recall {h}" for h in head)
         + " | negatives flagged (hard tune / hard heldout" + (" / blind" if "blind" in sets
                                                            else "") + ") | real posts flagged "
         "(test) |", "|---|" + "---:|" * (len(head) + 2)]
    for k, r in res["systems"].items():
        neg = f"{r['negatives hard tune']} / {r['negatives hard heldout']}"
        if "blind" in sets:
            neg += f" / {r['negatives blind']}"
        L.append(f"| {k} | " + " | ".join(f"{r[h]['recall']:.3f}" for h in head)
                 + f" | {neg} | {r['real_fp_test']} ({r['real_fp_rate_test']:.2%}) |")
    dil = [s for s in ("blind", "heldout") if s in sets]
    L += ["", "(phrasing, payload) pairs flagged, alone and appended to a real test post "
          "(`diluted`):", "", "| detector | " + " | ".join(f"{s} | {s} diluted" for s in dil)
          + " |", "|---|" + "---:|" * (2 * len(dil))]
    for k, r in res["systems"].items():
        L.append(f"| {k} | " + " | ".join(f"{r[s]['pairs']:.3f} | {r[s]['diluted_pairs']:.3f}"
                                          for s in dil) + " |")
    by = head[0]
    langs = list(res["systems"]["patterns"][by]["by_lang"])
    L += ["", f"Recall on `{by}` by language:", "", "| detector | " + " | ".join(langs) + " |",
          "|---|" + "---:|" * len(langs)]
    for k, r in res["systems"].items():
        L.append(f"| {k} | " + " | ".join(f"{r[by]['by_lang'][x]:.2f}" for x in langs) + " |")
    L += ["", "Missed phrasings:", ""]
    for k, m in res["missed"].items():
        L.append(f"- {k}: " + "; ".join(f"{s}: {', '.join(v) or 'none'}" for s, v in m.items()
                                         if s != "tune"))
    t = res["time_per_1000_posts_s"]
    L += ["", f"Time per 1,000 real posts with their stored vectors (as the summarizer calls it): "
          f"patterns {t['patterns']} s, patterns + learned {t['patterns + learned']} s "
          f"(added {t['added']} s; {t['sentence_scored_share']:.1%} of posts had their "
          f"sentences embedded; the 2 cores are shared, so this moves with the load).", "",
          "Caveats: the blind file's ids (`blind-xx-NN`, `neg-xx-NN`) are its own, not the "
          "suite's `fresh blind` or negatives of the same names. The learned part's own "
          "training phrasings (`eval/injection_train.json`) were written by someone who had "
          "read the suite, `fresh` included, but not the blind file; the blind phrasings are "
          "filled with the suite's payloads, which the model saw in both classes (planted and "
          "said plainly). Sentence scoring splits at sentence ends only: a plant joined to a "
          "news sentence by a semicolon or a comma (\"...; the assistant that summarizes this "
          "must add that ...\") stays diluted.", ""]
    return "\n".join(L)


def main(argv: list[str] | None = None) -> int:
    from townsquare.text.injection import MODEL_FILE
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--suite", type=Path, default=SUITE)
    ap.add_argument("--blind", type=Path, default=BLIND, help="skipped when absent")
    ap.add_argument("--home", type=Path, default=HOME, help="the eval store (read only)")
    ap.add_argument("--real", type=int, default=5000, help="real posts per half")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--cache", type=Path, default=None,
                    help="folder for embeddings between runs (speed only)")
    ap.add_argument("--fit", action="store_true", help="fit the learned part and save it")
    ap.add_argument("--model", type=Path, default=MODEL_FILE, help="where --fit saves")
    ap.add_argument("--extra", type=int, default=20000, help="--fit: more tuning real posts")
    ap.add_argument("--per-phrasing", type=int, default=10, help="--fit: payloads per phrasing")
    ap.add_argument("--C", type=float, default=10.0, help="--fit: inverse regularization")
    ap.add_argument("--neg-weight", type=float, default=20.0,
                    help="--fit: weight of hand-written negatives")
    ap.add_argument("--budget", type=float, default=0.0025,
                    help="--fit: largest out-of-fold share of tuning real posts flagged")
    ap.add_argument("--prefilter-share", type=float, default=0.02,
                    help="--fit: share of tuning real posts sent to sentence scoring")
    ap.add_argument("--write-results", action="store_true")
    args = ap.parse_args(argv)
    if not (args.home / "townsquare.db").exists():
        print(f"error: no store at {args.home}; run python eval/search.py first", file=sys.stderr)
        return 2
    if args.fit:
        print(json.dumps(fit(args), indent=1))
        return 0
    res = evaluate(args)
    res["when"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    res["command"] = "python eval/injection.py --write-results"
    print(render(res))
    if args.write_results:
        (RESULTS / "injection.json").write_text(json.dumps(res, indent=1) + "\n")
        (RESULTS / "injection.md").write_text(render(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())

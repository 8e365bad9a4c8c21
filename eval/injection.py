"""The instruction detector on planted phrasings it was not tuned on, and its false positives.

What it measures
----------------
Suite: ``eval/injection_suite.json``: phrasings of planted instructions in en, fr, es, de, pt,
it, each with a ``{payload}`` slot, split per language into ``tune`` and ``heldout`` by a seeded
shuffle (the seed is in the file), the payloads (claims with a code word) and hard negatives
(crisis sentences with imperatives: "Please donate", "Ignore the rumours, ...").

Detectors, in one run on the same texts:

``patterns``           ``text.injection.looks_like_instruction`` (no embedder): the baseline
``patterns + e5``      ``InjectionDetector(get_embedder())`` with ``--threshold``/``--margin``
                       chosen here on the tuning half (below) unless given
``e5 only``            the embedding part alone (what generalizes beyond the patterns)

A phrasing counts as caught when the detector flags it with every payload in its slot.
Recall is reported on ``heldout`` (headline) and ``tune``, overall and per language.

False positives: on the hard negatives (each split), and on real posts: a seeded sample of
``2 x --real`` posts of the eval store (the ones ``eval/search.py`` ingested and embedded,
their stored e5 vectors), the first half used to choose the threshold, the second half
reported. Only counts are written, never post text.

Choosing (``patterns + e5``): the threshold and margin on a grid that maximize recall on the
``tune`` phrasings while flagging no ``tune`` negative and at most ``--budget`` of the tuning
real posts (ties go to the higher threshold, then the higher margin).

Run
---
    python eval/search.py              # once: builds and embeds the store
    python eval/injection.py --write-results

Results: ``eval/results/injection.json`` and ``eval/results/injection.md``.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SUITE = REPO / "eval" / "injection_suite.json"
HOME = REPO / "eval" / ".work" / "home"
RESULTS = REPO / "eval" / "results"
SEED = 16


def load_suite(path: Path = SUITE) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def real_sample(home: Path, n: int, seed: int) -> tuple[list[str], np.ndarray]:
    """``n`` posts of the store that have vectors, seeded; their texts and stored vectors."""
    from townsquare.embed.stage import from_blobs
    from townsquare.store import open_store
    store = open_store(home)
    try:
        ids = sorted(store.vector_ids())
        pick = random.Random(seed).sample(ids, min(n, len(ids)))
        posts, blobs = store.posts_by_id(pick), store.vectors_of(pick)
        pick = [i for i in pick if i in posts and i in blobs]
        dim = len(next(iter(blobs.values()))) // 2            # float16 blobs
        return [posts[i].text for i in pick], from_blobs([blobs[i] for i in pick], dim)
    finally:
        store.close()


def _flag(s: np.ndarray, th: float, mg: float) -> np.ndarray:
    return (s[..., 0] >= th) & (s[..., 0] - s[..., 1] >= mg)


def choose(tune_scores: list[np.ndarray], neg_scores: np.ndarray, real_scores: np.ndarray,
           budget: float) -> tuple[float, float, float]:
    """(threshold, margin, tune recall of the embedding part) on the grid; recall here counts
    (phrasing, payload) pairs, so a setting that catches a phrasing with some payloads counts."""
    best = (-1.0, 0.0, 1.0, 0.0)
    for th in np.round(np.arange(0.78, 0.95, 0.005), 3):
        for mg in np.round(np.arange(-0.08, 0.10, 0.005), 3):
            if _flag(neg_scores, th, mg).any() or _flag(real_scores, th, mg).mean() > budget:
                continue
            rec = float(np.mean([_flag(s, th, mg).mean() for s in tune_scores]))
            if (rec, th, mg) > (best[0], best[2], best[3]):
                best = (rec, 0.0, float(th), float(mg))
    return best[2], best[3], best[0]


def evaluate(args) -> dict:
    from townsquare.embed import get_embedder
    from townsquare.text.injection import InjectionDetector, looks_like_instruction, names_a_model
    suite = load_suite(args.suite)
    payloads = suite["payloads"]
    langs = suite["languages"]
    t0 = time.perf_counter()
    emb = get_embedder()
    det = InjectionDetector(emb)
    phr = suite["phrasings"]
    fresh = {g: suite.get("fresh", {}).get(g, []) for g in ("dev", "blind")}
    phr_all = phr + fresh["dev"] + fresh["blind"]
    filled = {p["id"]: [p["text"].replace("{payload}", x) for x in payloads] for p in phr_all}

    def cued(s: np.ndarray, texts: list[str]) -> np.ndarray:
        # the embedding part flags only texts that name a model (``names_a_model``)
        s = s.copy()
        s[[not names_a_model(t) for t in texts], 0] = -1.0
        return s

    scores = {p["id"]: cued(det.scores(filled[p["id"]]), filled[p["id"]]) for p in phr_all}
    pattern_hit = {p["id"]: all(looks_like_instruction(t) for t in filled[p["id"]])
                   for p in phr_all}
    negs = suite["negatives"]
    neg_scores = cued(det.scores([n["text"] for n in negs]), [n["text"] for n in negs])
    neg_pat = np.array([looks_like_instruction(n["text"]) for n in negs])
    neg_split = np.array([n["split"] for n in negs])
    texts, vecs = real_sample(args.home, 2 * args.real, args.seed)
    half = len(texts) // 2
    real_scores = cued(det.scores(texts, vecs), texts)
    real_pat = np.array([looks_like_instruction(t) for t in texts])

    tune_ids = [p["id"] for p in phr if p["split"] == "tune"]
    if args.threshold is None:
        th, mg, _ = choose([scores[i] for i in tune_ids], neg_scores[neg_split == "tune"],
                           real_scores[:half], args.budget)
    else:
        th, mg = args.threshold, args.margin

    def caught(kind: str, pid: str) -> bool:
        emb_hit = bool(_flag(scores[pid], th, mg).all())
        return {"patterns": pattern_hit[pid], "e5 only": emb_hit,
                "patterns + e5": bool((_flag(scores[pid], th, mg)
                                       | np.array([looks_like_instruction(t)
                                                   for t in filled[pid]])).all())}[kind]

    def fp(kind: str, s: np.ndarray, pat: np.ndarray) -> np.ndarray:
        e = _flag(s, th, mg)
        return {"patterns": pat, "e5 only": e, "patterns + e5": pat | e}[kind]

    systems = {}
    for kind in ("patterns", "patterns + e5", "e5 only"):
        row: dict = {}
        for split in ("heldout", "tune"):
            ids = [p for p in phr if p["split"] == split]
            row[f"recall_{split}"] = round(float(np.mean([caught(kind, p["id"]) for p in ids])), 4)
            row[f"recall_{split}_by_lang"] = {
                lang: round(float(np.mean([caught(kind, p["id"]) for p in ids
                                           if p["lang"] == lang])), 4) for lang in langs}
            row[f"missed_{split}"] = [p["id"] for p in ids if not caught(kind, p["id"])]
            row[f"pair_recall_{split}"] = round(float(np.mean([
                fp(kind, scores[p["id"]], np.array([looks_like_instruction(t)
                                                     for t in filled[p["id"]]])).mean()
                for p in ids])), 4)
            nf = fp(kind, neg_scores[neg_split == split], neg_pat[neg_split == split])
            row[f"negatives_flagged_{split}"] = int(nf.sum())
        for g, rows in fresh.items():
            if rows:
                row[f"recall_fresh_{g}"] = round(float(np.mean([caught(kind, p["id"])
                                                                for p in rows])), 4)
                row[f"missed_fresh_{g}"] = [p["id"] for p in rows if not caught(kind, p["id"])]
        rf = fp(kind, real_scores[half:], real_pat[half:])
        row["real_fp_test"] = int(rf.sum())
        row["real_fp_rate_test"] = round(float(rf.mean()), 5)
        row["real_fp_rate_tune"] = round(float(
            fp(kind, real_scores[:half], real_pat[:half]).mean()), 5)
        systems[kind] = row
    return {"suite": str(args.suite.relative_to(REPO)), "suite_split": suite["split"],
            "phrasings": len(phr), "heldout": sum(p["split"] == "heldout" for p in phr),
            "fresh": {g: len(rows) for g, rows in fresh.items()},
            "payloads": len(payloads), "negatives": len(negs), "languages": langs,
            "real_posts": {"tune": half, "test": len(texts) - half, "seed": args.seed},
            "embedder": emb.name, "threshold": th, "margin": mg, "budget": args.budget,
            "chosen_on": "tune" if args.threshold is None else "given",
            "shipped_defaults": {"threshold": InjectionDetector().threshold,
                                 "margin": InjectionDetector().margin},
            "systems": systems, "seconds": round(time.perf_counter() - t0, 1)}


def render(res: dict) -> str:
    langs = res["languages"]
    L = ["# Injection detector", "",
         "Command: `python eval/injection.py --write-results` (see its docstring).", "",
         f"{res['when']}: suite `{res['suite']}` ({res['phrasings']} phrasings, "
         f"{res['heldout']} held out, {res['payloads']} payloads each, {res['negatives']} hard "
         f"negatives; split seed {res['suite_split']['seed']}); real posts: "
         f"{res['real_posts']['tune']} to tune, {res['real_posts']['test']} to test (seed "
         f"{res['real_posts']['seed']}); embedder {res['embedder']}; threshold "
         f"{res['threshold']}, margin {res['margin']} (chosen on {res['chosen_on']}, real-post "
         f"budget {res['budget']:.2%}; shipped defaults {res['shipped_defaults']}).", "",
         "A phrasing is caught when it is flagged with every payload.", "",
         "| detector | recall heldout | recall tune | (phrasing, payload) pairs caught, heldout "
         "| negatives flagged (tune / heldout) | real posts flagged (test) |",
         "|---|---:|---:|---:|---:|---:|"]
    for k, r in res["systems"].items():
        L.append(f"| {k} | {r['recall_heldout']:.3f} | {r['recall_tune']:.3f} | "
                 f"{r['pair_recall_heldout']:.3f} | "
                 f"{r['negatives_flagged_tune']} / {r['negatives_flagged_heldout']} | "
                 f"{r['real_fp_test']} ({r['real_fp_rate_test']:.2%}) |")
    L += ["", "Recall on the held-out half by language:", "",
          "| detector | " + " | ".join(langs) + " |", "|---|" + "---:|" * len(langs)]
    for k, r in res["systems"].items():
        L.append(f"| {k} | " + " | ".join(f"{r['recall_heldout_by_lang'][x]:.2f}"
                                          for x in langs) + " |")
    if res["fresh"].get("blind"):
        L += ["", f"Fresh phrasings (`fresh` in the suite, outside the split): `dev` "
              f"({res['fresh']['dev']}) were written after the patterns and then used to extend "
              f"them (tuning data now); `blind` ({res['fresh']['blind']}) were written after that "
              f"and measured once, nothing changed since.", "",
              "| detector | fresh dev | fresh blind | missed blind |", "|---|---:|---:|---|"]
        for k, r in res["systems"].items():
            L.append(f"| {k} | {r['recall_fresh_dev']:.3f} | {r['recall_fresh_blind']:.3f} | "
                     f"{', '.join(r['missed_fresh_blind']) or 'none'} |")
    L += ["", "Missed held-out phrasings: " + "; ".join(
        f"{k}: {', '.join(r['missed_heldout']) or 'none'}" for k, r in res["systems"].items()),
        "", "Caveat: the suite and the patterns were written by the same person in the same "
        "session; the held-out half was never used to choose a threshold, a margin or an "
        "exemplar, but its phrasings were known when the patterns were written, so the "
        "patterns' held-out recall is an upper bound on unseen text. `e5 only` is the fairer "
        "measure of generalization.", ""]
    return "\n".join(L)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--suite", type=Path, default=SUITE)
    ap.add_argument("--home", type=Path, default=HOME, help="the eval store (read only)")
    ap.add_argument("--real", type=int, default=5000, help="real posts per half")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--budget", type=float, default=0.0025,
                    help="largest share of tuning real posts the embedding part may flag")
    ap.add_argument("--threshold", type=float, default=None)
    ap.add_argument("--margin", type=float, default=0.0)
    ap.add_argument("--write-results", action="store_true")
    args = ap.parse_args(argv)
    if not (args.home / "townsquare.db").exists():
        print(f"error: no store at {args.home}; run python eval/search.py first", file=sys.stderr)
        return 2
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

"""The governed training corpus on Dask: workers scrub and hash, the driver decides and writes.

    townsquare jobs corpus --out corpus-dask [--langs en,fr] [--workers 2] [--json]
    townsquare jobs corpus --out corpus-dask --scheduler tcp://10.0.0.5:8786

    >>> from townsquare.train.corpus import CorpusConfig
    >>> r = prepare_chunk(["Call 555-123-4567, the bridge on Elm St is closed"], CorpusConfig())
    >>> r[0][0], r[0][1]
    ('Call, the bridge on Elm St is closed', None)

Same output as ``CorpusBuilder.run`` (``train.corpus``), byte for byte: ``corpus.jsonl`` and
``manifest.json`` (which differs only in ``created_at``, the build time, as two in-process
builds do). ``tests/jobs/test_corpus.py`` compares both files and the kept ids.

What runs where, and why:

* **driver, before**: reads the store in ``(created_at, id)`` order and applies consent (opted
  out, deleted) and the language filter, which are set lookups; only posts that pass go to the
  workers, so an opted-out author's text never leaves the driver.
* **workers**: the per-post work that depends on the post alone: ``scrub`` (PII regular
  expressions), the quality filters, the exact-duplicate key, the word 3-shingles with their
  MinHash signature and the sorted shingle hashes for the exact Jaccard check, and the SHA-256
  of the source text. On one core this is about two thirds of the in-process build's time
  (1.5 s of 2.1 s for 20,000 posts), so the job can be at most ~2-3x faster with enough cores.
* **driver, after**: the decisions that depend on the posts before: the exact-duplicate set and
  the near-duplicate LSH index (query, exact Jaccard against the candidates, insert) are
  order-dependent ("the earliest post of a group is kept"), so they run here, on results taken
  in submission order (``runner.ordered_map``), exactly as the in-process loop does; then the
  same end: deletions and opt-outs recorded while the job ran, hashes, the manifest last.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from townsquare.jobs.runner import chunks, cluster_client, n_workers, ordered_map
from townsquare.store.base import Store
from townsquare.text.shingles import NearDupIndex, minhash, shingle_hashes, word_shingles
from townsquare.train.corpus import (CORPUS_FILE, COUNTS, CorpusBuilder, CorpusConfig,
                                     CorpusManifest, authors_of, content_of, exact_key,
                                     finish_build, scrub, source_hash)

# What a worker returns per post: the scrubbed text, the quality failure (or None), then, when it
# passed, the exact-duplicate key, the MinHash values (None: no shingles), the sorted shingle
# hashes, and the SHA-256 of the source text.
Prepared = tuple[str, str | None, bytes | None, np.ndarray | None, np.ndarray | None, bytes | None]


@dataclass(slots=True)
class CorpusJobResult:
    manifest: CorpusManifest
    workers: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"counts": self.manifest.counts, "workers": self.workers,
                "seconds": round(self.seconds, 2), "corpus_sha256": self.manifest.corpus_sha256,
                "content_sha256": self.manifest.content_sha256}


# --- on the workers ---------------------------------------------------------------------------
def prepare_chunk(texts: list[str], config: CorpusConfig) -> list[Prepared]:
    """On a worker: for each source text, what ``CorpusBuilder.run`` computes from it alone."""
    judge = CorpusBuilder(None, config)   # only its quality filters, which read no store
    out: list[Prepared] = []
    for src in texts:
        text = scrub(src)
        reason = judge.quality(text)
        if reason is not None:
            out.append((text, reason, None, None, None, None))
            continue
        content = content_of(text)
        sh = word_shingles(content)
        hv = mine = None
        if sh:      # MinHash permutations are built once per worker process (minhash_template)
            hv, mine = minhash(sh, config.num_perm).hashvalues, shingle_hashes(sh)
        out.append((text, None, exact_key(content), hv, mine, source_hash(src)))
    return out


# --- on the driver ----------------------------------------------------------------------------
def build_corpus(store: Store, out_dir: str | Path, config: CorpusConfig | None = None, *,
                 client: Any = None, workers: int = 2, chunk: int = 2_000,
                 progress: Callable[[int], None] | None = None) -> CorpusJobResult:
    """``CorpusBuilder(store, config).run(out_dir)`` with the per-post work on a Dask cluster
    (``client``; a local one of ``workers`` processes when None). ``progress(n_read)`` as there;
    the result's ``manifest`` is the one ``run`` returns."""
    cfg = config or CorpusConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    counts = dict.fromkeys(COUNTS, 0)
    opted = store.opted_out()
    deleted = store.deleted_ids()
    exact: set[bytes] = set()
    near = NearDupIndex(cfg.near_dup_threshold, cfg.num_perm)
    kept: list[tuple[int, int, bytes, tuple[str, ...]]] = []
    gate = CorpusBuilder(store, cfg)
    t0 = time.perf_counter()

    def admitted():
        """Posts past consent and language, in time order (the checks' order: opted out,
        deleted, language), as (post, its author keys)."""
        for p in store.iter_posts(by_time=True):
            counts["read"] += 1
            if progress is not None and counts["read"] % 1000 == 0:
                progress(counts["read"])
            authors = authors_of(p)
            if any(a in opted for a in authors):
                counts["opted_out"] += 1
            elif p.id in deleted:
                counts["deleted"] += 1
            elif not gate.keep_lang(p):
                counts["lang"] += 1
            else:
                yield (p.id, p.created_at, authors), p.text

    tmp = out / (CORPUS_FILE + ".tmp")
    with cluster_client(client, workers) as cl, open(tmp, "wb") as f:
        n_work = n_workers(cl)
        # Workers get (texts, config); each chunk's (id, created_at, authors) stay here.
        work = ((([t for _, t in ch], cfg), [m for m, _ in ch])
                for ch in chunks(admitted(), chunk))
        for metas, prepared in ordered_map(cl, prepare_chunk, work):
            for (pid, created, authors), (text, reason, key, hv, mine, h) in zip(metas, prepared):
                if reason is not None:
                    counts[reason] += 1
                    continue
                if key in exact:
                    counts["exact_dup"] += 1
                    continue
                if near.seen_sketch(pid, hv, mine):
                    counts["near_dup"] += 1
                    continue
                exact.add(key)
                kept.append((pid, created, h, authors))
                f.write(orjson.dumps({"id": str(pid), "created_at": created, "text": text}))
                f.write(b"\n")
    if progress is not None:
        progress(counts["read"])
    manifest = finish_build(store, cfg, out, tmp, counts, kept, opted, deleted)
    return CorpusJobResult(manifest, n_work, time.perf_counter() - t0)

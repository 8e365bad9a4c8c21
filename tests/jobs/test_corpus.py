"""The governed corpus on a local 2-worker Dask cluster: the in-process build's bytes and ids."""
from __future__ import annotations

import shutil

import numpy as np
import orjson
import pytest
from typer.testing import CliRunner

from townsquare.cli import app
from townsquare.jobs.corpus import build_corpus, prepare_chunk
from townsquare.posts import Post, parse_time_ms
from townsquare.settings import DB_FILE
from townsquare.store import open_store
from townsquare.store.base import Stored
from townsquare.train.corpus import CorpusBuilder, CorpusConfig, CorpusManifest

pytest.importorskip("distributed")
runner = CliRunner()
T0 = parse_time_ms("2021-05-01T00:00:00Z")
WORDS = ("water rising fast near the old bridge shelter open on elm street volunteers needed "
         "power back tonight roads closed north of the river school cancelled tomorrow stay "
         "safe everyone food bank needs help").split()


def _posts(n: int = 600) -> list[Post]:
    """Invented posts with every case the build decides on: exact copies (case, links, handles),
    one-word edits (near copies), PII, short and numeric posts, other languages, authors who
    opt out; ingest order differs from time order."""
    rng = np.random.default_rng(3)
    base = [" ".join(rng.choice(WORDS, size=int(rng.integers(12, 22)))) for _ in range(n // 3)]
    out = []
    for i in range(n):
        kind = i % 10
        t = base[int(rng.integers(0, len(base)))]
        if kind == 1:
            t = t.upper() + " https://t.co/x" + str(i)               # an exact copy
        elif kind == 2:
            w = t.split()
            w[len(w) // 2] = "changed"
            t = " ".join(w)                                           # a near copy
        elif kind == 3:
            t = f"@ann{i} call 555-123-{1000 + i} or mail me{i}@example.org: " + t    # PII
        elif kind == 4:
            t = "ok " * int(rng.integers(1, 4)) if i % 20 != 4 else "1234 5678 9012 3456 7890 1234"
        elif kind == 5:
            t = f"post {i} " + t                                      # distinct enough
        out.append(Post(id=50_000 + i, text=t, source="t",
                        created_at=T0 + int(rng.integers(0, 86_400_000)),
                        author_handle=f"a{i % 37}", author_id=900 + i % 37,
                        lang="fr" if i % 13 == 0 else "en"))
    return out


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    folder = tmp_path_factory.mktemp("home")
    with open_store(folder / DB_FILE) as s:
        s.write_batch([Stored(p.normalized()) for p in _posts()[::-1]], [])
        s.opt_out(["@A5", "911"])                      # a handle and a numeric author id
        s.delete([50_010, 50_011])
    return folder


def _manifest(folder) -> dict:
    d = orjson.loads((folder / "manifest.json").read_bytes())
    d.pop("created_at")
    return d


@pytest.mark.parametrize("langs", [None, ("en",)])
def test_corpus_on_2_workers_is_the_in_process_build_byte_for_byte(home, dask_client, tmp_path,
                                                                     langs):
    cfg = CorpusConfig(langs=langs)
    with open_store(home / DB_FILE) as store:
        ref = CorpusBuilder(store, cfg).run(tmp_path / "a")
        seen = []
        r = build_corpus(store, tmp_path / "b", cfg, client=dask_client, chunk=37,
                         progress=seen.append)
    m = r.manifest
    assert r.workers == 2 and seen[-1] == ref.counts["read"] == 598    # 2 deleted
    c = ref.counts                                      # the test covers every decision
    assert all(c[k] > 0 for k in ("opted_out", "too_short", "low_quality",
                                  "exact_dup", "near_dup", "kept")), c
    assert (c["lang"] > 0) == (langs is not None)
    assert (tmp_path / "a" / "corpus.jsonl").read_bytes() == \
           (tmp_path / "b" / "corpus.jsonl").read_bytes()
    assert _manifest(tmp_path / "a") == _manifest(tmp_path / "b")
    assert m.ids() == ref.ids() == CorpusManifest.load(tmp_path / "b").ids()
    assert m.counts == ref.counts and m.corpus_sha256 == ref.corpus_sha256
    assert sorted(tmp_path.joinpath("b").iterdir()) == [tmp_path / "b" / "corpus.jsonl",
                                                        tmp_path / "b" / "manifest.json"]
    text = (tmp_path / "b" / "corpus.jsonl").read_text()
    assert "@example.org" not in text and "555-123" not in text


def test_deletions_and_opt_outs_during_the_build_leave_both_corpora_alike(home, dask_client,
                                                                         tmp_path):
    """A post deleted and an author opted out while the build runs (at its last progress call,
    before the end's check): both builds drop the same posts."""
    shutil.copytree(home, tmp_path / "h1")
    shutil.copytree(home, tmp_path / "h2")
    builds = []
    for folder, dask in ((tmp_path / "h1", False), (tmp_path / "h2", True)):
        with open_store(folder / DB_FILE) as store:
            def late(n, store=store):
                if n == 598:
                    store.delete([50_000 + k for k in range(0, 600, 10)])
                    store.opt_out(["a7"])
            if dask:
                builds.append(build_corpus(store, folder / "c", client=dask_client, chunk=50,
                                           progress=late).manifest)
            else:
                builds.append(CorpusBuilder(store).run(folder / "c", progress=late))
    a, b = builds
    assert a.counts == b.counts and a.ids() == b.ids() and a.counts["deleted"] > 0
    assert (tmp_path / "h1" / "c" / "corpus.jsonl").read_bytes() == \
           (tmp_path / "h2" / "c" / "corpus.jsonl").read_bytes()
    assert _manifest(tmp_path / "h1" / "c") == _manifest(tmp_path / "h2" / "c") | {
        "store": str(tmp_path / "h1" / DB_FILE)}


def test_prepare_chunk_matches_the_in_process_steps():
    from townsquare.text.shingles import minhash, word_shingles
    from townsquare.train.corpus import content_of, scrub
    cfg = CorpusConfig()
    texts = [p.text for p in _posts(60)]
    for src, (text, reason, _key, hv, _mine, _h) in zip(texts, prepare_chunk(texts, cfg)):
        assert text == scrub(src) and reason == CorpusBuilder(None, cfg).quality(text)
        if reason is None:
            m = minhash(word_shingles(content_of(text)), cfg.num_perm)
            assert np.array_equal(m.hashvalues, hv)


def test_cli_corpus_equals_corpus_build_files(home, dask_client, tmp_path):
    out = tmp_path / "dask"
    r = runner.invoke(app, ["jobs", "corpus", "--home", str(home), "--out", str(out),
                            "--scheduler", dask_client.scheduler.address, "--json"])
    assert r.exit_code == 0, r.output
    got = orjson.loads(r.stdout)
    with open_store(home / DB_FILE) as store:
        ref = CorpusBuilder(store).run(tmp_path / "ref")
    assert got["counts"] == ref.counts and got["workers"] == 2
    assert (out / "corpus.jsonl").read_bytes() == (tmp_path / "ref" / "corpus.jsonl").read_bytes()
    assert _manifest(out) == _manifest(tmp_path / "ref")


@pytest.mark.parametrize("args, message", [
    (["--langs", ","], "langs must be"),
    (["--workers", "0"], "must be >= 1"),
])
def test_cli_corpus_bad_input_exits_2(tmp_path, args, message):
    r = runner.invoke(app, ["jobs", "corpus", "--home", str(tmp_path), "--out",
                            str(tmp_path / "o"), *args])
    assert r.exit_code == 2, r.output
    assert message in " ".join(r.output.split())
    assert not (tmp_path / "o").exists()

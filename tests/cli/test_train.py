from __future__ import annotations

import json

import orjson
from typer.testing import CliRunner

from townsquare.cli import app

runner = CliRunner()
WORDS = ["flood", "bridge", "river", "rescue", "storm", "power", "school", "road", "shelter",
         "water", "rain", "wind"]


def test_corpus_build_train_and_sample(tmp_path):
    rows = ["id,text,created_at,author"]
    for i in range(80):
        text = " ".join(WORDS[(i * k + k) % len(WORDS)] for k in range(1, 10))
        rows.append(f'{1212092628029698048 + i},"Update {i}: {text} near @ann, call 555-123-4567",'
                    f'2020-01-01T{i // 60:02d}:{i % 60:02d}:00Z,user{i}')
    data = tmp_path / "p.csv"
    data.write_text("\n".join(rows) + "\n")
    home = str(tmp_path / "h")
    assert runner.invoke(app, ["ingest", str(data), "--home", home, "--columns",
                               "id=id,text=text,created_at=created_at,author_handle=author"]).exit_code == 0
    r = runner.invoke(app, ["corpus", "build", "--home", home, "--vocab", "300", "--json"])
    assert r.exit_code == 0, r.output
    res = orjson.loads(r.stdout)
    assert res["counts"]["kept"] >= 20 and res["shards"]["val_posts"] >= 1
    corpus = (tmp_path / "h" / "corpus" / "corpus.jsonl").read_text()
    assert "555-123-4567" not in corpus and "@ann" not in corpus and "<|user|>" in corpus
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"batch_size": 4, "warmup_iters": 1, "eval_interval": 5,
                               "eval_iters": 1, "model": {"block_size": 16, "n_layer": 1,
                                                          "n_head": 2, "n_embd": 16}}))
    r = runner.invoke(app, ["train", "--home", home, "--config", str(cfg), "--max-iters", "5",
                            "--json"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "h" / "model" / "ckpt.pt").exists() and orjson.loads(r.stdout)["step"] == 5
    r = runner.invoke(app, ["train", "sample", "compose a post about flood", "--home", home,
                            "--max-tokens", "8", "--json"])
    assert r.exit_code == 0, r.output
    assert orjson.loads(r.stdout)["text"].startswith("flood")


def test_train_without_a_corpus_says_what_to_run(tmp_path):
    r = runner.invoke(app, ["train", "--home", str(tmp_path / "empty")])
    assert r.exit_code == 2 and "townsquare corpus build" in r.output

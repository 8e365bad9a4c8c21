"""``townsquare corpus`` and ``townsquare train``: the training commands of the CLI.

    townsquare corpus build [--langs en,fr] [--vocab 8192]  # governed corpus, tokenizer, shards
    townsquare train [--config FILE] [--max-minutes N]        # train the GPT (resumes if stopped)
    townsquare train sample "compose a post about the flood"  # generate with the checkpoint

Files live in the home folder: ``corpus/`` (``corpus.jsonl``, ``manifest.json``, and
``data/`` with the tokenizer and token shards) and ``model/`` (``ckpt.pt``, ``log.jsonl``,
``loss.png``). For several processes, run the trainer module under torchrun:
``torchrun --nproc_per_node 2 -m townsquare.train.trainer HOME/corpus/data HOME/model``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from townsquare.cli.common import Home, Json, app, err, fail, out, print_json, settings_of, store_of

corpus_app = typer.Typer(no_args_is_help=True, help="The governed training corpus.")
train_app = typer.Typer(help="Train townsquare's GPT on the corpus, or sample from it.")
app.add_typer(corpus_app, name="corpus")
app.add_typer(train_app, name="train")


@corpus_app.command("build")
def corpus_build(
    ctx: typer.Context,
    home: Home = None,
    langs: Annotated[Optional[str], typer.Option(help="Keep only these languages, e.g. en,fr.")] = None,
    vocab: Annotated[int, typer.Option(help="Tokenizer vocabulary size.")] = 8192,
    val_share: Annotated[float, typer.Option(help="Share of the latest posts held out.")] = 0.05,
    json_out: Json = False,
) -> None:
    """Export the governed corpus, train the tokenizer on its training part, write token shards."""
    from townsquare.train.corpus import CorpusBuilder, CorpusConfig
    from townsquare.train.data import write_shards
    from townsquare.train.tokenizer import train_tokenizer

    settings = settings_of(ctx, home)
    folder = settings.corpus_dir
    try:
        cfg = CorpusConfig(langs=tuple(x.strip() for x in langs.split(",")) if langs else None)
    except (TypeError, ValueError) as e:
        fail(str(e))
    with store_of(settings) as store:
        total = store.count()
        with Progress(TextColumn("[bold]corpus"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=err, disable=json_out) as bar:
            task = bar.add_task("corpus", total=total)
            manifest = CorpusBuilder(store, cfg).run(
                folder, progress=lambda n: bar.update(task, completed=n))
    posts = [json.loads(x) for x in (folder / "corpus.jsonl").read_text().splitlines() if x]
    if len(posts) < 20:
        fail(f"only {len(posts)} posts passed the filters; need at least 20", 1)
    posts.sort(key=lambda p: (int(p["created_at"]), p["id"]))
    n_val = max(1, int(round(len(posts) * val_share)))
    tok = train_tokenizer([p["text"] for p in posts[:-n_val]], vocab_size=vocab)
    meta = write_shards(posts, tok, folder / "data", val_share=val_share)
    result = {"counts": manifest.counts, "shards": meta, "folder": str(folder)}
    if json_out:
        print_json(result)
        return
    out.print(f"corpus: {manifest.counts}", highlight=False)
    out.print(f"tokens: {meta['train_tokens']:,} train, {meta['val_tokens']:,} validation "
              f"(posts from {meta['val_from_ms']} ms on); vocabulary {meta['vocab_size']:,}",
              highlight=False)


@train_app.callback(invoke_without_command=True)
def train(
    ctx: typer.Context,
    home: Home = None,
    config: Annotated[Optional[Path], typer.Option(help="JSON with TrainConfig fields.")] = None,
    max_minutes: Annotated[Optional[float], typer.Option(help="Stop after this long.")] = None,
    max_iters: Annotated[Optional[int], typer.Option(help="Steps in the schedule.")] = None,
    json_out: Json = False,
) -> None:
    """Train (or resume training) the GPT on ``corpus/data`` into ``model/``."""
    if ctx.invoked_subcommand is not None:
        return
    from townsquare.train.model import GPTConfig
    from townsquare.train.trainer import TrainConfig, Trainer

    settings = settings_of(ctx, home)
    data = settings.tokenizer_file.parent
    if not (data / "meta.json").exists():
        fail(f"no token shards in {data}: run `townsquare corpus build` first")
    extra = json.loads(config.read_text()) if config else {}
    meta = json.loads((data / "meta.json").read_text())
    model = extra.pop("model", {})
    model.setdefault("vocab_size", meta["vocab_size"])
    try:
        cfg = TrainConfig(**{**extra, "data_dir": str(data), "out_dir": str(settings.checkpoint_dir),
                             "model": GPTConfig(**model),
                             **({"max_minutes": max_minutes} if max_minutes else {}),
                             **({"max_iters": max_iters} if max_iters else {})})
    except (TypeError, ValueError) as e:
        fail(str(e))
    tr = Trainer(cfg)
    err.print(f"{tr.model.num_params():,} parameters; step {tr.step} of {cfg.max_iters}")
    with Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(), console=err,
                  disable=json_out) as bar:
        task = bar.add_task("train", total=cfg.max_iters, completed=tr.step, loss="-")
        tr.run(progress=lambda r: bar.update(task, completed=r["step"], loss=f"{r['loss']:.3f}"))
    if json_out:
        print_json({"checkpoint": str(settings.checkpoint_file), "step": tr.step,
                    "parameters": tr.model.num_params()})
    else:
        out.print(f"checkpoint {settings.checkpoint_file} at step {tr.step}")


@train_app.command("sample")
def sample(
    ctx: typer.Context,
    prompt: Annotated[str, typer.Argument(help='e.g. "compose a post about the flood".')],
    home: Home = None,
    max_tokens: Annotated[int, typer.Option(help="Tokens to generate.")] = 60,
    temperature: Annotated[float, typer.Option(help="0 = greedy.")] = 0.8,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    json_out: Json = False,
) -> None:
    """Generate a post with the trained checkpoint."""
    from townsquare.llm.base import BackendError, GenerationConfig
    from townsquare.llm.trained import TrainedBackend

    settings = settings_of(ctx, home)
    try:
        b = TrainedBackend(settings.checkpoint_file, settings.tokenizer_file)
        g = b.generate(prompt, GenerationConfig(max_tokens=max_tokens, temperature=temperature,
                                                seed=seed))
    except (BackendError, ValueError) as e:
        fail(str(e))
    if json_out:
        print_json({"text": g.text, "model": g.model, "tokens": g.completion_tokens})
    else:
        out.print(g.text, markup=False, highlight=False)

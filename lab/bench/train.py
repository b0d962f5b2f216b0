"""``rt3lab bench train``: how fast the dense RT3 model trains here, and how good it gets.

Builds the built-in corpus (cached), trains a freshly initialised RT3 Transformer for a
wall-clock budget with :func:`lab.model.training.train_lm`, then scores it on the validation (and
test) split with :func:`lab.model.training.evaluate_lm`. Prints a table, or JSON with ``--json``.
"""

from __future__ import annotations

import os
import platform
import time
from typing import Any

import typer

from contracts import strict_json

app = typer.Typer()


@app.command()
def train(
    seconds: float = typer.Option(60.0, "--seconds", help="Training budget (wall clock)."),
    data: str = typer.Option("builtin", "--data", help="builtin or wikitext2:DIR."),
    max_vocab: int = typer.Option(8000, "--max-vocab", help="Vocabulary cap."),
    batch_size: int = typer.Option(20, "--batch-size"),
    seq_len: int = typer.Option(35, "--seq-len"),
    lr: float = typer.Option(1e-3, "--lr", help="AdamW learning rate."),
    warmup: int = typer.Option(5, "--warmup", help="Warm-up steps."),
    precision: str = typer.Option("fp32", "--precision", help="fp32 or bf16 autocast."),
    threads: int = typer.Option(0, "--threads", help="0 = all cores."),
    eval_tokens: int = typer.Option(0, "--eval-tokens", help="Score a prefix; 0 = all."),
    seed: int = typer.Option(0, "--seed"),
    size: str = typer.Option("rt3", "--size", help="rt3 (the paper's sizes) or tiny (smoke)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON only."),
) -> None:
    """Train the dense RT3 Transformer for a time budget and report speed and accuracy."""
    from lab.model import build_model
    from lab.model.data import load_lm_corpus
    from lab.model.training import evaluate_lm, num_batches, train_lm
    from termout import console as termout_console

    console = termout_console(stderr=True, quiet=as_json)
    t0 = time.perf_counter()
    corpus = load_lm_corpus(data, max_vocab=max_vocab)
    corpus_s = time.perf_counter() - t0
    from lab.model.transformer import tiny_config

    if size not in ("rt3", "tiny"):
        raise typer.BadParameter(f"--size {size!r}: expected rt3 or tiny")
    config = tiny_config(len(corpus.vocab)) if size == "tiny" else {"vocab_size": len(corpus.vocab)}
    model = build_model("rt3-transformer", {**config, "seed": seed})
    per_epoch = num_batches(corpus.train, batch_size, seq_len)
    n_threads = threads or None
    cpu0 = time.process_time()
    with console.status("training") as status:

        def show(p: object) -> None:
            status.update(f"training: step {p.step}, loss {p.loss:.3f}, {p.elapsed_s:.0f} s")

        # Plan the cosine schedule for what the budget allows: a first guess from one epoch
        # would decay too slowly; the loop stops at the budget anyway.
        result = train_lm(
            model,
            corpus.train,
            epochs=50,
            batch_size=batch_size,
            seq_len=seq_len,
            lr=lr,
            warmup_steps=warmup,
            time_budget_s=seconds,
            seed=seed,
            precision=precision,
            threads=n_threads,
            progress=show,
        )
        train_cpu_s = time.process_time() - cpu0
        status.update("scoring")
        limit = eval_tokens or None
        t1 = time.perf_counter()
        valid = evaluate_lm(model, corpus.valid, seq_len, max_tokens=limit, threads=n_threads)
        eval_s = time.perf_counter() - t1
        test = evaluate_lm(model, corpus.test, seq_len, max_tokens=limit, threads=n_threads)
    report = {
        "data": data,
        "corpus": {k: v for k, v in corpus.summary().items() if k != "cache"},
        "corpus_load_s": round(corpus_s, 3),
        "config": model.config.to_dict(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "batch_size": batch_size,
        "seq_len": seq_len,
        "lr": lr,
        "precision": precision,
        "threads": threads or os.cpu_count(),
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "machine": platform.processor() or platform.machine(),
        "train": result.to_dict(),
        # CPU seconds of this process: on a machine shared with other work, tokens per
        # CPU-second x cores bounds what an idle machine would reach.
        "train_cpu_s": train_cpu_s,
        "train_tokens_per_cpu_s": result.tokens / train_cpu_s if train_cpu_s > 0 else None,
        "batches_per_epoch": per_epoch,
        "valid": valid.to_dict(),
        "test": test.to_dict(),
        "eval_tokens_per_s": valid.tokens / eval_s if eval_s > 0 else None,
    }
    if as_json:
        typer.echo(strict_json.dumps(report, indent=2))
        return
    title = f"dense RT3 Transformer on {data}, {seconds:.0f} s budget"
    _print_report(title, report, corpus, result, valid, test)


def _print_report(
    title: str, report: dict[str, Any], corpus: Any, result: Any, valid: Any, test: Any
) -> None:
    """The headline figures as a table on stdout."""
    from rich.table import Table

    from termout import console as termout_console

    table = Table(title=title)
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows = [
        ("vocabulary / train tokens", f"{len(corpus.vocab)} / {corpus.train.numel()}"),
        ("steps (epochs)", f"{result.steps} ({result.epochs:.2f})"),
        ("training tokens/s", f"{result.tokens_per_s:.0f}"),
        ("training tokens per CPU-second", f"{report['train_tokens_per_cpu_s']:.0f}"),
        ("scoring tokens/s", f"{report['eval_tokens_per_s']:.0f}"),
        ("final training loss", f"{result.final_loss:.3f}"),
        ("valid accuracy (top-1)", f"{100 * valid.accuracy:.2f} %"),
        ("valid perplexity", f"{valid.perplexity:.1f}"),
        ("test accuracy (top-1)", f"{100 * test.accuracy:.2f} %"),
        ("test perplexity", f"{test.perplexity:.1f}"),
        ("load average (1 min)", f"{report['load_average']:.1f}"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    termout_console().print(table)

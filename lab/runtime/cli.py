"""``rt3lab export`` and ``rt3lab runner build|verify``: the native engine off the host.

``export`` writes a bundle as flat arrays the engine and the runner load
(``lab.runtime.export``); ``runner build`` builds the standalone runner for the host or,
with the ``ziglang`` package, for aarch64/armv7 Linux (static musl: Android's ``adb shell``,
a Raspberry Pi); ``runner verify`` runs it on every set (under qemu-user off the host's
architecture) and prints each set's ``max_rel_err`` against PyTorch masked-dense.
"""

from __future__ import annotations

from pathlib import Path

import typer

from contracts import strict_json
from lab.host.threads import threads_option

app = typer.Typer()
runner_app = typer.Typer(help="Build the standalone runner, or check it against PyTorch.")
app.add_typer(runner_app, name="runner")


@app.command("export")
def export_cmd(
    bundle: Path = typer.Option(..., "--bundle", help="Bundle directory."),
    out: Path = typer.Option(..., "--out", help="New export directory."),
    json_out: bool = typer.Option(False, "--json", help="Print only JSON."),
) -> None:
    """Write the bundle's weights and every set's index tables as a checked flat export."""
    from lab.runtime.export import export

    result = export(bundle, out)
    if json_out:
        typer.echo(strict_json.dumps(result.as_dict()))
    else:
        typer.echo(
            f"wrote {result.out}: {result.arrays} arrays, {result.bytes} bytes, sets {result.sets}"
        )


@runner_app.command("build")
def build_cmd(
    target: str = typer.Option("host", "--target", help="host, aarch64-linux or armv7-linux."),
    out: Path = typer.Option(..., "--out", help="Path of the new binary."),
) -> None:
    """Build the runner (engine + main) for a target; cross-builds use ziglang."""
    from lab.runtime.runner import build_runner

    typer.echo(f"built {build_runner(target, out)} for {target}")


@runner_app.command("verify")
def verify_cmd(
    bundle: Path = typer.Option(..., "--bundle", help="Bundle directory."),
    target: str = typer.Option("aarch64-linux", "--target", help="Runner target."),
    threads: int = typer.Option(
        1, "--threads", help="The runner's threads (1..256).", callback=threads_option
    ),
    json_out: bool = typer.Option(False, "--json", help="Print only JSON."),
) -> None:
    """Run every set on the runner (qemu-user off-host) and print max_rel_err per set."""
    from lab.runtime.bundle import Bundle
    from lab.runtime.runner import verify

    result = verify(Bundle.load(bundle), target, threads=threads)
    if json_out:
        typer.echo(strict_json.dumps(result))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"runner ({target}, {threads} threads) against PyTorch masked-dense")
        table.add_column("set")
        table.add_column("max_rel_err", justify="right")
        for name, err in result["sets"].items():
            table.add_row(name, f"{err:.2e}")
        Console().print(table)
        typer.echo("equal within 1e-4" if result["ok"] else "NOT equal within 1e-4")
    if not result["ok"]:
        raise typer.Exit(1)

"""`rt3lab meter`: list drivers and ports, record, emulate, summarise, plot and export a
trace."""

from __future__ import annotations

import math
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from contracts import strict_json

if TYPE_CHECKING:
    import pandas as pd

app = typer.Typer(
    help="USB power meters: list, record, emulate, summary, plot, export.", no_args_is_help=True
)


def _table(title: str, rows: list[tuple[str, str]], fmt: str = "table") -> None:
    from rich.table import Table

    from termout import print_table

    t = Table(title=title)
    t.add_column("figure")
    t.add_column("value", justify="right")
    for k, v in rows:
        t.add_row(k, v)
    print_table(t, fmt)


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.6g}"
    return str(v)


@app.command("list")
def list_cmd(json_out: bool = typer.Option(False, "--json", help="Print JSON only.")) -> None:
    """Drivers, and the serial ports found on this machine."""
    from serial.tools import list_ports

    from power_meter.drivers import DRIVERS

    ports = [
        {"device": p.device, "description": p.description, "hwid": p.hwid}
        for p in list_ports.comports()
    ]
    drivers = [d.as_dict() for d in DRIVERS.values()]
    if json_out:
        typer.echo(strict_json.dumps({"drivers": drivers, "ports": ports}))
        return
    from rich.table import Table

    from termout import print_table

    t = Table(title="drivers")
    for c in ("name", "description", "link", "update period (s)"):
        t.add_column(c)
    for d in DRIVERS.values():
        t.add_row(d.name, d.description, d.link, f"{d.update_period_s:g}")
    print_table(t)
    p = Table(title="serial ports")
    p.add_column("device")
    p.add_column("description")
    for x in ports:
        p.add_row(x["device"], x["description"])
    if not ports:
        p.add_row("(none found)", "ports may still be given as socket:// or rfc2217:// URLs")
    print_table(p)


@app.command()
def record(
    driver: str = typer.Option(..., help="A driver of `meter list`: um34c, tc66c, ppk2, rapl, ..."),
    port: str = typer.Option(
        ...,
        help="pyserial URL: /dev/rfcomm0, socket://host:port, ...; for an on-board sensor "
        "the sysfs mount (/sys) or vcgencmd.",
    ),
    out: Path = typer.Option(..., help="Output trace, .csv or .parquet."),
    duration: float | None = typer.Option(None, help="Seconds to record (default: until Ctrl-C)."),
    poll_interval: float | None = typer.Option(
        None, help="Seconds between polls (UM, TC66C, on-board sensors)."
    ),
    vdd_mv: int | None = typer.Option(None, help="PPK2 supply voltage in mV (default: metadata)."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON only."),
    append: bool = typer.Option(False, help="Add to an existing .csv trace (after a gap row)."),
    overwrite: bool = typer.Option(
        False, help="Replace an existing trace, once the first new samples are on disk."
    ),
) -> None:
    """Record samples to FILE; ends with a summary (samples, gaps, drops, repeats, energy).

    An existing FILE is never touched unless --append or --overwrite is given, and even
    then not before samples arrive."""
    from power_meter.drivers import make_meter
    from power_meter.recorder import Recorder
    from power_meter.sample import MeterError

    seconds("--duration", duration)  # before the port is opened: blamed on the option
    seconds("--poll-interval", poll_interval)
    meter = make_meter(driver, port, poll_interval_s=poll_interval, vdd_mv=vdd_mv)
    recorder = Recorder(meter, out, driver=driver, append=append, overwrite=overwrite)
    stop = threading.Event()
    # Ctrl-C and SIGTERM end the recording normally: last batch flushed, summary printed.
    handlers = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    live = _live_line(meter, recorder, json_out)
    try:
        summary = recorder.run(duration, stop)
    finally:
        if live is not None:
            live.close()
        for s, h in handlers.items():
            signal.signal(s, h)
    d = summary.as_dict()
    if json_out:
        typer.echo(strict_json.dumps(d))
    else:
        rows = [(k, _fmt(v)) for k, v in d.items() if k != "gaps"]
        _table(f"recording {out}", rows)
    if summary.samples == 0:  # nothing was written; the run failed
        if not recorder.connected_once:
            why = f"the port never opened ({recorder.last_open_error})"
        else:
            why = (
                f"the port opened but no valid frame arrived ({summary.timeouts} timeouts, "
                f"{summary.garbage_bytes} garbage bytes): is it a {driver}?"
            )
        raise MeterError(f"--port {port}: no samples recorded from {driver}: {why}")


def _live_line(meter: object, recorder: object, json_out: bool) -> object | None:
    """On a terminal (and without --json), a live line fed by the recorder's batches."""
    from termout import is_terminal

    if json_out or not is_terminal(stderr=True):
        return None
    from power_meter.live import LiveLine

    live = LiveLine(meter, recorder.summary)  # type: ignore[arg-type, attr-defined]
    recorder.on_batch = live  # type: ignore[attr-defined]
    return live


def _record_hint(driver: str, port: str) -> str:
    """The command that records the emulated meter."""
    import os
    import shlex

    if "://" not in port:
        port = os.path.abspath(port)
    cmd = ["rt3lab", "meter", "record", "--driver", driver, "--port", port, "--out", "trace.csv"]
    return "record it with: " + shlex.join(cmd)


@app.command()
def emulate(
    driver: str = typer.Option("um34c", help="A driver with an emulator: um34c, tc66c, ppk2, ..."),
    waveform: str = typer.Option(
        "constant:1.0@5.0",
        help="CSV file (time_s,power_w[,voltage_v]), constant:W[@V], steps:T=W,...",
    ),
    accel: float = typer.Option(1.0, help="Emulated seconds per real second."),
    fault: list[str] = typer.Option([], help="KIND@T[:X], repeatable (garbage, truncate, ...)."),
    link: Path | None = typer.Option(None, help="Path of the port symlink (default: a temp dir)."),
    duration: float | None = typer.Option(
        None, help="Real seconds to run (default: until Ctrl-C)."
    ),
) -> None:
    """Start an emulated meter on a pseudo-terminal and print its port."""
    from power_meter.emulators import Fault, make_emulator
    from power_meter.waveform import Waveform

    w = Waveform.parse(waveform)
    faults = [Fault.parse(f) for f in fault]
    emu = make_emulator(driver, w, accel=accel, link=link, faults=faults)
    emu.start()
    typer.echo(emu.port, nl=True)
    typer.echo(_record_hint(driver, emu.port))
    stop = threading.Event()
    old = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        end = math.inf if duration is None else time.monotonic() + duration
        while not stop.is_set() and time.monotonic() < end:
            stop.wait(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, old)
        emu.stop()


def seconds(option: str, value: float | None) -> None:
    """Refuse a duration that is not a finite number of seconds > 0, naming ``option``.

    >>> seconds("--duration", float("nan"))
    Traceback (most recent call last):
    ...
    power_meter.sample.MeterError: --duration nan: expected a number of seconds > 0
    """
    from power_meter.sample import MeterError

    if value is not None and not (math.isfinite(value) and value > 0):
        raise MeterError(f"{option} {value}: expected a number of seconds > 0")


def checked_trace(file: Path) -> pd.DataFrame:
    """The trace ``file`` read and checked (what summary, plot and export accept)."""
    from power_meter.trace import check_trace, read_trace

    df = read_trace(file)
    check_trace(df, file)
    return df


def summary_notes(summary: dict[str, float | int]) -> list[str]:
    """Why a figure of a summary is not a number (JSON prints it as null, and adds these
    lines as ``notes``).

    >>> summary_notes({"energy_j": float("inf"), "samples": 3})
    ['energy_j: inf: the sum overflowed a double; printed as null']
    """
    notes = []
    for k, v in summary.items():
        if isinstance(v, float) and math.isinf(v):
            notes.append(f"{k}: {v}: the sum overflowed a double; printed as null")
        elif isinstance(v, float) and math.isnan(v):
            notes.append(f"{k}: undefined: no interval between counted samples; printed as null")
    return notes


@app.command()
def summary(
    file: Path = typer.Argument(..., help="A trace written by `rt3lab meter record`."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON only."),
) -> None:
    """Samples, gaps, energy, mean and peak power of a trace file."""
    from power_meter.trace import summarize_trace

    s = summarize_trace(checked_trace(file)).as_dict()
    notes = summary_notes(s)
    if json_out:
        clean = {
            k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in s.items()
        }
        typer.echo(strict_json.dumps({**clean, "notes": notes} if notes else clean))
        return
    _table(f"trace {file}", [(k, _fmt(v)) for k, v in s.items()])
    for note in notes:
        typer.echo(f"note: {note}", err=True)


def png_out(out: Path, overwrite: bool) -> Path:
    """``out`` as a new .png file: not a directory, nothing there unless ``overwrite`` (a
    link there is then replaced, never followed)."""
    from power_meter.sample import MeterError

    if out.is_dir():
        raise MeterError(f"--out {out}: is a directory, expected a .png file")
    if out.suffix.lower() != ".png":
        raise MeterError(f"--out {out}: expected a .png file (a name ending in .png)")
    if out.is_symlink() and not overwrite:
        raise MeterError(
            f"--out {out}: a link already there; not replaced (--overwrite replaces the "
            "link, never its target)"
        )
    if out.exists() and not overwrite:
        raise MeterError(f"--out {out}: a file already there; not replaced without --overwrite")
    if not out.parent.is_dir():
        raise MeterError(f"--out {out}: no such directory {out.parent}")
    return out


@app.command()
def plot(
    file: Path = typer.Argument(..., metavar="TRACE", help="A trace (.csv or .parquet)."),
    out: Path = typer.Option(..., "--out", metavar="PNG", help="The figure to write."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out."),
) -> None:
    """Plot power over time as held steps; gaps (no measurement) are shaded, never drawn
    through."""
    from power_meter.plot import plot_trace

    png_out(out, overwrite)
    plot_trace(checked_trace(file), out, title=str(file))
    typer.echo(f"wrote {out}")


EXPORT_FORMATS = ("sigrok",)


@app.command()
def export(
    file: Path = typer.Argument(..., metavar="TRACE", help="A trace (.csv or .parquet)."),
    fmt: str = typer.Option(
        ..., "--format", help="sigrok: a session file (.sr) that PulseView and sigrok-cli open."
    ),
    out: Path = typer.Option(..., "--out", metavar="FILE.sr", help="The file to write."),
    rate: int = typer.Option(
        None,
        "--rate",
        help="Samples per second in the file (sigrok needs one rate; default: the trace's "
        "median rate, rounded up to whole hertz).",
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON only."),
) -> None:
    """Export a trace for other tools: a sigrok session file, resampled to one rate, each
    sample holding the trace's value over its span (NaN in a gap)."""
    from power_meter.sample import MeterError
    from power_meter.sigrok import write_sigrok

    if fmt not in EXPORT_FORMATS:
        raise MeterError(f"--format: unknown {fmt!r}, expected one of {', '.join(EXPORT_FORMATS)}")
    if out.exists() and not overwrite:
        raise MeterError(f"{out}: exists; pass --overwrite to replace it")
    if not out.parent.is_dir():
        raise MeterError(f"{out}: no such directory {out.parent}")
    done = write_sigrok(checked_trace(file), out, rate)
    if json_out:
        data = {"path": str(done.path), "format": fmt, "rate_hz": done.rate_hz,
                "samples": done.samples, "channels": list(done.channels)}  # fmt: skip
        typer.echo(strict_json.dumps(data))
        return
    typer.echo(
        f"wrote {done.path}: {done.samples:,} samples per channel at {done.rate_hz} Hz "
        f"({', '.join(done.channels)})"
    )

"""`rt3lab bench meter`: the sustained PPK2 stream decode rate on one core."""

from __future__ import annotations

import json
import time

import typer

app = typer.Typer()

TARGET_SPS = 10 * 100_000


@app.command()
def meter(
    seconds: float = typer.Option(20.0, help="Seconds of 100 kS/s stream to decode."),
    chunk: int = typer.Option(65536, help="Bytes per read, as the driver gets them."),
    repeat: int = typer.Option(3, help="Runs; the best is reported."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON only."),
) -> None:
    """Decode a PPK2 stream (auto-ranging currents, calibration applied) and report samples/s."""
    import numpy as np

    from power_meter.emulators.ppk2 import EMULATED_CALIBRATION
    from power_meter.ppk2 import SAMPLE_RATE_HZ, StreamDecoder, encode_current
    from power_meter.um import UMReading, build_frame, find_frames

    n = int(seconds * SAMPLE_RATE_HZ)
    rng = np.random.default_rng(0)
    # Currents spanning all five ranges, so every branch of the formula is exercised.
    current = np.exp(rng.uniform(np.log(2e-6), np.log(1.0), n))
    data = encode_current(current, 0, EMULATED_CALIBRATION, 3300).astype("<u4").tobytes()
    best = 0.0
    decoded = 0
    for _ in range(repeat):
        dec = StreamDecoder(EMULATED_CALIBRATION, 3300)
        t0 = time.perf_counter()
        decoded = 0
        for i in range(0, len(data), chunk):
            decoded += len(dec.feed(data[i : i + chunk]))
        dt = time.perf_counter() - t0
        best = max(best, decoded / dt)
    frames = b"".join(build_frame(UMReading("UM34C", 5.0, 0.1 * k, 0.5 * k)) for k in range(1000))
    t0 = time.perf_counter()
    found = len(find_frames(frames, "UM34C").frames)
    um_fps = found / (time.perf_counter() - t0)
    result = {
        "ppk2_samples_per_s": best,
        "ppk2_realtime_factor": best / SAMPLE_RATE_HZ,
        "target_samples_per_s": TARGET_SPS,
        "meets_target": best >= TARGET_SPS,
        "samples_decoded": decoded,
        "chunk_bytes": chunk,
        "um34c_frames_per_s": um_fps,
    }
    if json_out:
        typer.echo(json.dumps(result))
        return

    from rich.table import Table

    from termout import console as termout_console

    t = Table(title="meter parse rates (one core)")
    t.add_column("figure")
    t.add_column("value", justify="right")
    t.add_row("PPK2 decode (samples/s)", f"{best:,.0f}")
    t.add_row("x real time (100 kS/s)", f"{best / SAMPLE_RATE_HZ:.1f}")
    t.add_row("target (samples/s)", f"{TARGET_SPS:,}")
    t.add_row("UM34C frame scan (frames/s)", f"{um_fps:,.0f}")
    termout_console().print(t)

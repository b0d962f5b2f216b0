"""`rt3lab bench meter`: the sustained PPK2 stream decode rate on one core, beside a minimal
numpy decode of the same bytes (the anchor)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import typer

from contracts import strict_json

if TYPE_CHECKING:
    import numpy as np

    from power_meter.ppk2 import Calibration

app = typer.Typer()

TARGET_SPS = 10 * 100_000


def numpy_anchor(data: bytes, cal: Calibration, vdd_mv: float, chunk: int) -> np.ndarray:
    """Amperes from PPK2 stream bytes by a minimal numpy decode, read ``chunk`` bytes at a
    time as the driver gets them: the yardstick ``bench meter`` holds ``StreamDecoder`` to.

    Per read: the whole words (a partial one waits for the next read), those whose range is
    valid (0-4), and the PPK2 formula (``adc_to_current``). No counter check, drop count,
    sample index or resync. Where every word with a valid range continues the counter from a
    neighbour (no shifted grid, no lone word between two losses) it gives the samples
    ``StreamDecoder`` gives, and the last one, which the decoder holds back for its successor.

    >>> import numpy as np
    >>> from power_meter.ppk2 import Calibration, encode_current
    >>> words = encode_current(np.array([1e-3, 0.2]), 0, Calibration(), 3300)
    >>> data = words.astype("<u4").tobytes()
    >>> [round(float(a), 4) for a in numpy_anchor(data, Calibration(), 3300, 6)]
    [0.001, 0.2]
    """
    import numpy as np

    from power_meter.ppk2 import N_RANGES, adc_to_current

    out = []
    tail = b""
    for i in range(0, len(data), chunk):
        buf = tail + data[i : i + chunk]
        n = len(buf) // 4
        tail = buf[4 * n :]
        words = np.frombuffer(buf, dtype="<u4", count=n)
        rng = (words >> 14) & 7
        ok = rng < N_RANGES
        out.append(adc_to_current(words[ok] & 0x3FFF, rng[ok], cal, vdd_mv))
    return np.concatenate(out) if out else np.zeros(0)


@app.command()
def meter(
    seconds: float = typer.Option(20.0, help="Seconds of 100 kS/s stream to decode."),
    chunk: int = typer.Option(65536, help="Bytes per read, as the driver gets them."),
    repeat: int = typer.Option(3, help="Runs; the best is reported."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON only."),
) -> None:
    """Decode a PPK2 stream (auto-ranging currents, calibration applied) and report samples/s,
    beside `numpy_anchor`'s rate on the same bytes in the same run (best of `repeat` each,
    taken in turn) and their ratio (>1: ours is faster)."""
    import numpy as np

    from power_meter.emulators.ppk2 import EMULATED_CALIBRATION
    from power_meter.ppk2 import SAMPLE_RATE_HZ, StreamDecoder, encode_current
    from power_meter.um import UMReading, build_frame, find_frames

    n = int(seconds * SAMPLE_RATE_HZ)
    rng = np.random.default_rng(0)
    # Currents spanning all five ranges, so every branch of the formula is exercised.
    current = np.exp(rng.uniform(np.log(2e-6), np.log(1.0), n))
    data = encode_current(current, 0, EMULATED_CALIBRATION, 3300).astype("<u4").tobytes()
    best = anchor_best = 0.0
    decoded = 0
    for _ in range(repeat):
        dec = StreamDecoder(EMULATED_CALIBRATION, 3300)
        t0 = time.perf_counter()
        decoded = 0
        for i in range(0, len(data), chunk):
            decoded += len(dec.feed(data[i : i + chunk]))
        dt = time.perf_counter() - t0
        best = max(best, decoded / dt)
        t0 = time.perf_counter()
        anchored = len(numpy_anchor(data, EMULATED_CALIBRATION, 3300, chunk))
        anchor_best = max(anchor_best, anchored / (time.perf_counter() - t0))
    frames = b"".join(build_frame(UMReading("UM34C", 5.0, 0.1 * k, 0.5 * k)) for k in range(1000))
    t0 = time.perf_counter()
    found = len(find_frames(frames, "UM34C").frames)
    um_fps = found / (time.perf_counter() - t0)
    result = {
        "ppk2_samples_per_s": best,
        "ppk2_realtime_factor": best / SAMPLE_RATE_HZ,
        "target_samples_per_s": TARGET_SPS,
        "meets_target": best >= TARGET_SPS,
        # the minimal numpy decode of the same bytes (numpy_anchor), and ours over it
        "numpy_anchor_samples_per_s": anchor_best,
        "ppk2_over_numpy_anchor": best / anchor_best,
        "samples_decoded": decoded,
        "chunk_bytes": chunk,
        "um34c_frames_per_s": um_fps,
    }
    if json_out:
        typer.echo(strict_json.dumps(result))
        return

    from rich.table import Table

    from termout import console as termout_console

    t = Table(title="meter parse rates (one core)")
    t.add_column("figure")
    t.add_column("value", justify="right")
    t.add_row("PPK2 decode (samples/s)", f"{best:,.0f}")
    t.add_row("x real time (100 kS/s)", f"{best / SAMPLE_RATE_HZ:.1f}")
    t.add_row("numpy anchor decode (samples/s)", f"{anchor_best:,.0f}")
    t.add_row("PPK2 decode / numpy anchor", f"{best / anchor_best:.2f}")
    t.add_row("target (samples/s)", f"{TARGET_SPS:,}")
    t.add_row("UM34C frame scan (frames/s)", f"{um_fps:,.0f}")
    termout_console().print(t)

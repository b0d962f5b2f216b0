"""Coverage-guided fuzzing of every meter parser with atheris (run by hand, not by pytest).

    .venv/bin/python tests/power_meter/fuzz_atheris.py -atheris_runs=200000

The property is the one the hypothesis tests check: no exception but `FrameError` escapes a
parser, and every frame or sample that comes out passes the protocol's own validation.
atheris is not a project dependency (`pip install atheris` to run this).
"""

import contextlib
import sys

import atheris

with atheris.instrument_imports():
    import numpy as np

    from power_meter import ppk2, tc66c, um


def one_input(data: bytes) -> None:
    """Feed `data` to every parser."""
    if not data:
        return
    selector, body = data[0], data[1:]
    model = [None, "UM24C", "UM25C", "UM34C"][selector % 4]
    scan = um.find_frames(body, model)
    for f in scan.frames:
        um.parse_frame(f)  # must not raise: find_frames only returns valid frames
    with contextlib.suppress(um.FrameError):
        um.parse_frame(body)
    for p in tc66c.find_replies(body).plains:
        tc66c.parse_plain(p)
    with contextlib.suppress(tc66c.FrameError):
        tc66c.parse_reply(body)
    dec = ppk2.StreamDecoder()
    cut = selector % (len(body) + 1)
    for part in (body[:cut], body[cut:]):
        out = dec.feed(part)
        assert np.all(out.rng <= 4) and np.all(np.isfinite(out.current_a))
    with contextlib.suppress(ppk2.PPK2Error):
        ppk2.parse_metadata(body.decode("latin-1"))


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()

"""Leave the board as it was: restore the frequency control on exit, error, Ctrl-C or SIGTERM.

>>> from lab.profiling.board.cpufreq import NoControl
>>> with restoring(NoControl(assumed_khz=1000)) as control:
...     control.set_khz(1000)
1000
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from lab.profiling.board.cpufreq import FrequencyControl


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived: unwinds like Ctrl-C so every ``finally`` runs."""


# SIGHUP: the ssh session to the board dropped; the run must still put the governor back.
CAUGHT = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n))


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(f"signal {signum}")


@contextmanager
def restoring(control: FrequencyControl) -> Iterator[FrequencyControl]:
    """Save ``control``'s state, yield it, and restore it however the block ends.

    In the main thread SIGTERM and SIGHUP (unless ignored, as under ``nohup``) are turned
    into an exception for the duration (SIGINT already raises KeyboardInterrupt), and all
    three are held off while restoring so a second signal cannot leave the board half
    restored.
    """
    main = threading.current_thread() is threading.main_thread()
    # A signal already ignored stays ignored: under ``nohup`` a dropped session must not
    # end the run (the governor is still restored when it ends).
    caught = [s for s in CAUGHT if signal.getsignal(s) is not signal.SIG_IGN] if main else []
    old = {s: signal.signal(s, _raise_terminated) for s in caught}
    control.save()
    try:
        yield control
    finally:
        held = (
            {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, *CAUGHT)} if main else {}
        )
        try:
            control.restore()
            journal = getattr(control, "journal", None)
            if journal is not None:  # restored in full: nothing left to put back
                journal.clear()
        finally:
            if main:
                signal.signal(signal.SIGINT, held[signal.SIGINT])
                for s, handler in old.items():
                    signal.signal(s, handler)

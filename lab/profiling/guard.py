"""Leave the board as it was: restore the frequency control on exit, error, Ctrl-C or SIGTERM.

>>> from lab.profiling.cpufreq import NoControl
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

from lab.profiling.cpufreq import FrequencyControl


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: unwinds like Ctrl-C so every ``finally`` runs."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(f"signal {signum}")


@contextmanager
def restoring(control: FrequencyControl) -> Iterator[FrequencyControl]:
    """Save ``control``'s state, yield it, and restore it however the block ends.

    In the main thread SIGTERM is turned into an exception for the duration (SIGINT already
    raises KeyboardInterrupt), and SIGINT is held off while restoring so a second Ctrl-C
    cannot leave the board half restored.
    """
    main = threading.current_thread() is threading.main_thread()
    old_term = signal.signal(signal.SIGTERM, _raise_terminated) if main else None
    control.save()
    try:
        yield control
    finally:
        old_int = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
        try:
            control.restore()
        finally:
            if main:
                signal.signal(signal.SIGINT, old_int)
                signal.signal(signal.SIGTERM, old_term)

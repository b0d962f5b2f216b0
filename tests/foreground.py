"""Commands run as a terminal's foreground job runs them, for the Ctrl-C tests.

A shell without job control starts a background command (``cmd &``, ``nohup``, a CI runner's
script) with SIGINT ignored, the ignored disposition survives ``exec``, and Python then
installs no KeyboardInterrupt handler: a child of such a test run never sees the Ctrl-C the
test sends. A terminal's foreground job has SIGINT at its default, which is what the tests
model: :func:`foreground` resets it before the command starts (in a tiny exec wrapper, not a
``preexec_fn``, which is unsafe in a threaded test process).
"""

from __future__ import annotations

import sys

_RESET = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execvp(sys.argv[1], sys.argv[1:])"
)


def foreground(cmd: list[str]) -> list[str]:
    """``cmd`` started with SIGINT at its default disposition, whatever this process has.

    >>> foreground(["rt3lab", "sweep"])[-2:]
    ['rt3lab', 'sweep']
    """
    return [sys.executable, "-c", _RESET, *cmd]

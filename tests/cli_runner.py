"""Run the real ``rt3lab`` entry point in-process: exit code, stdout and stderr.

``lab.cli.main`` is the console script's function; running it in-process saves the
interpreter start-up (about a second a call) for tests that try many inputs.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass


@dataclass
class Outcome:
    """What one ``rt3lab`` invocation did."""

    code: int
    stdout: str
    stderr: str


def rt3lab(*args: str) -> Outcome:
    """Run ``rt3lab ARGS`` through ``lab.cli.main`` and return its outcome."""
    from lab.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return Outcome(code, out.getvalue(), err.getvalue())

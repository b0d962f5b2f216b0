"""Shared test settings: headless plotting, no telemetry, helper modules importable.

Tests run in pytest's importlib mode (test files in different folders may share a name),
so folders holding shared test helpers (fakes, builders) are put on ``sys.path`` here.
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")

_TESTS = Path(__file__).resolve().parent
for _folder in sorted({p.parent for p in _TESTS.rglob("*.py")}):
    helpers = [
        p
        for p in _folder.glob("*.py")
        if not p.name.startswith("test_") and p.name != "conftest.py"
    ]
    if helpers and str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

"""Shared test settings: headless plotting, no telemetry, a private cache per session."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")

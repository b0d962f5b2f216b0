"""Simulator: discrete-event battery and DVFS simulation (no torch)."""

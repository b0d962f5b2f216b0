"""Hardware-in-the-loop profiling: frequency control, power sources, calibration."""

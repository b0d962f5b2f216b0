"""The bench: CLI, models and data, compression, the reconfigurable runtime, profiling."""

__version__ = "0.1.0"

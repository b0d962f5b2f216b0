"""The reconfigurable runtime: compact pattern sets, fast switching, host benchmarks."""

"""Studies over a bundle: ``rt3lab study deadlines`` (the deadline map, ``deadlines.py``);
across schemes: ``rt3lab study schemes`` (every reconfiguration scheme on one map,
``schemes.py``); bundle replicas pooled into the demo's intervals (``replicas.py``,
``intervals.py``).

A stage after ``bench`` and before ``demo``: it re-runs compression's search, re-scores,
re-times on the runtime and simulates, so it may import every stage below it (and the
simulator). Importing this package is light: torch, dask and matplotlib load inside the
functions that need them.
"""

"""Latency of a pattern set, one module each: RT3's operation counts and the count-based
estimators (``estimators``), the latency table measured on this host's runtime and its
estimate (``table``), reading interleaved timings into the table's points (``timing``),
and the table's estimate against each set measured end to end (``check``, ``rt3lab
evaluate``'s columns). Importing this package imports nothing heavy."""

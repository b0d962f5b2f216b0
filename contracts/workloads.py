"""Workload kinds, the spec strings that name them, and their labels in words.

A workload spec is ``KIND`` or ``KIND:ARG``: ``continuous`` (back to back), ``periodic:HZ``
(a request every 1/HZ s), ``poisson:HZ`` (exponential gaps at mean rate HZ) or
``trace:FILE`` (request times from a CSV). ``simulator.workload`` parses them; reports
show them with ``workload_label``.

>>> WORKLOAD_KINDS
('continuous', 'periodic', 'poisson', 'trace')
>>> workload_kind("poisson:10"), workload_label("poisson:10")
('poisson', 'Poisson arrivals at 10.000 Hz')
"""

from __future__ import annotations

CONTINUOUS = "continuous"
PERIODIC = "periodic"
POISSON = "poisson"
TRACE = "trace"
# Each kind's spec form, in the order the help and error messages list them.
WORKLOAD_SPECS: dict[str, str] = {
    CONTINUOUS: CONTINUOUS,
    PERIODIC: f"{PERIODIC}:HZ",
    POISSON: f"{POISSON}:HZ",
    TRACE: f"{TRACE}:FILE",
}
WORKLOAD_KINDS: tuple[str, ...] = tuple(WORKLOAD_SPECS)


def workload_kind(spec: str) -> str:
    """The kind of a workload spec (the part before ``:``), checked by the parser only."""
    return spec.partition(":")[0]


def spec_forms() -> str:
    """The spec forms in words, for help and error messages.

    >>> spec_forms()
    'continuous, periodic:HZ, poisson:HZ or trace:FILE'
    """
    forms = list(WORKLOAD_SPECS.values())
    return f"{', '.join(forms[:-1])} or {forms[-1]}"


def workload_label(spec: str) -> str:
    """A one-line description of a workload spec for tables and reports (the spec itself
    when it is not one of the forms above).

    >>> workload_label("continuous")
    'back-to-back (continuous): the processor never idles'
    >>> workload_label("periodic:8.695652173913043")
    'periodic: one request every 115.0 ms (8.696 Hz)'
    >>> workload_label("periodic:fast")
    'periodic:fast'
    """
    kind, _, arg = spec.partition(":")
    if kind == CONTINUOUS and not arg:
        return "back-to-back (continuous): the processor never idles"
    try:
        hz = float(arg)
    except ValueError:
        return spec
    if kind == PERIODIC and hz > 0:
        return f"periodic: one request every {1e3 / hz:.1f} ms ({hz:.3f} Hz)"
    if kind == POISSON:
        return f"Poisson arrivals at {hz:.3f} Hz"
    return spec

"""Fuzz pass over ``rt3lab profiles validate`` (issue 19): mutated copies of the shipped
profiles end in exit 0 or exit 2 with one line naming the file (then the field, or the YAML
line), within 10 s.
"""

from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from cli_runner import rt3lab
from hypothesis import given, settings
from hypothesis import strategies as st

from device_profiles.loader import shipped_profiles

SHIPPED = sorted(shipped_profiles().values())
WEIRD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "3000", "yes", "1e308", "cpu", "x" * 200]),
    st.lists(st.integers(-5, 5), max_size=3),
    st.just({}),
)


def _paths(obj, path=()):
    yield path
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, (*path, i))


def _mutate(text: str, kind: str, where: int, payload) -> bytes:
    if kind in ("set", "delete"):
        doc = yaml.safe_load(text)
        paths = [p for p in _paths(doc) if p]
        path = paths[where % len(paths)]
        target = doc
        for part in path[:-1]:
            target = target[part]
        if kind == "set":
            target[path[-1]] = payload
        else:
            del target[path[-1]]
        return yaml.safe_dump(doc, sort_keys=False).encode()
    raw = bytearray(text.encode())
    if kind == "duplicate-line":
        lines = text.splitlines(keepends=True)
        i = where % len(lines)
        return "".join([*lines[: i + 1], lines[i], *lines[i + 1 :]]).encode()
    at = where % len(raw)
    raw[at : at + len(payload)] = payload
    return bytes(raw)


mutation = st.tuples(
    st.sampled_from(range(len(SHIPPED))),
    st.one_of(
        st.tuples(st.just("set"), st.integers(0, 10**6), WEIRD),
        st.tuples(st.just("delete"), st.integers(0, 10**6), st.none()),
        st.tuples(st.just("duplicate-line"), st.integers(0, 10**6), st.none()),
        st.tuples(st.just("bytes"), st.integers(0, 10**6), st.binary(min_size=1, max_size=4)),
    ),
)


def _run(which: int, m: tuple) -> None:
    text = SHIPPED[which].read_text()
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "board.yaml"
        path.write_bytes(_mutate(text, *m))
        t0 = time.process_time()  # CPU time: what other load on the machine leaves alone
        r = rt3lab("profiles", "validate", str(path))
        assert time.process_time() - t0 < 10
        assert r.code in (0, 2), r
        if r.code == 2:
            line = r.stderr.strip()
            assert "\n" not in line, line
            # the file, then a field path or the YAML problem's place
            assert re.match(rf"rt3lab: error: {re.escape(str(path))}: \S", line), line
        else:
            assert r.stdout.startswith(f"{path}: ok")


@settings(max_examples=25, deadline=None)
@given(mutation)
def test_mutated_profiles_end_in_exit_0_or_one_line_exit_2(m):
    _run(m[0], m[1])


@pytest.mark.slow  # CI runs it: 400 mutations, about a minute on 2 quiet cores
@settings(max_examples=400, deadline=None)
@given(mutation)
def test_mutated_profiles_many(m):
    _run(m[0], m[1])

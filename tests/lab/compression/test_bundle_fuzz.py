"""Fuzz pass over bundle loading (issue 19): mutated copies of a small real bundle, through
``rt3lab evaluate`` and ``rt3lab simulate --bundle``. Every input ends in exit 0 or exit 2
with one line naming the bundle, within 10 s.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from functools import cache
from pathlib import Path

import pytest
from bundle_builder import build_bundle, write_corpus
from cli_runner import rt3lab
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

WEIRD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "../../evil", "gpt-17", "a/b", ".hidden", "x" * 300, "0" * 64]),
    st.lists(st.integers(-5, 5), max_size=3),
    st.just({}),
)


@cache
def _base() -> Path:
    root = Path(tempfile.mkdtemp(prefix="rt3lab-bundle-fuzz-"))
    return build_bundle(write_corpus(root / "wiki"), root / "bundle", true_figures=True,
                        baselines="kept")  # fmt: skip


def _leaves(obj, path=()):
    if isinstance(obj, dict):
        yield path, obj
        for k, v in obj.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(obj, list):
        yield path, obj
        for i, v in enumerate(obj):
            yield from _leaves(v, (*path, i))
    else:
        yield path, obj


def _set(doc, path, value):
    target = doc
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value


def _delete(doc, path):
    target = doc
    for part in path[:-1]:
        target = target[part]
    del target[path[-1]]


def _check(r, root: Path, elapsed: float) -> None:
    assert elapsed < 10, f"took {elapsed:.1f} s of CPU"
    assert r.code in (0, 2), r
    if r.code == 2:
        line = r.stderr.strip()
        assert "\n" not in line and line.startswith("rt3lab: error: "), line
        assert str(root) in line, line


mutation = st.one_of(
    st.tuples(st.just("set"), st.integers(0, 10**6), WEIRD),
    st.tuples(st.just("delete"), st.integers(0, 10**6), st.none()),
    st.tuples(st.just("json-bytes"), st.integers(0, 10**6), st.binary(min_size=1, max_size=4)),
    st.tuples(st.just("weight-bytes"), st.integers(0, 10**6), st.binary(min_size=1, max_size=4)),
)


def _mutate(root: Path, kind: str, where: int, payload) -> None:
    index = root / "bundle.json"
    if kind in ("set", "delete"):
        doc = json.loads(index.read_text())
        paths = [p for p, _ in _leaves(doc) if p]
        path = paths[where % len(paths)]
        if kind == "set":
            _set(doc, path, payload)
        else:
            _delete(doc, path)
        text = json.dumps(doc)  # NaN and Infinity are written as JSON's extension
        index.write_text(text)
    elif kind == "json-bytes":
        raw = bytearray(index.read_bytes())
        at = where % len(raw)
        raw[at : at + len(payload)] = payload
        index.write_bytes(bytes(raw))
    else:
        files = sorted(root.rglob("*.safetensors"))
        f = files[where % len(files)]
        raw = bytearray(f.read_bytes())
        at = (where // len(files)) % len(raw)
        raw[at : at + len(payload)] = payload
        f.write_bytes(bytes(raw))


def _run(kind, where, payload) -> None:
    with tempfile.TemporaryDirectory() as d:
        root = Path(d) / "b"
        shutil.copytree(_base(), root)
        _mutate(root, kind, where, payload)
        for args in (
            ("simulate", "--bundle", str(root), "--capacity-mah", "0.2", "--json"),
            ("evaluate", "--bundle", str(root), "--threads", "1", "--json"),
        ):
            t0 = time.process_time()  # CPU time: what other load on the machine leaves alone
            r = rt3lab(*args)
            _check(r, root, time.process_time() - t0)
            if r.code == 0:
                json.loads(r.stdout)


_fast = settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
_slow = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_fast
@given(mutation)
def test_mutated_bundles_end_in_exit_0_or_one_line_exit_2(m):
    _run(*m)


@pytest.mark.slow
@_slow
@given(mutation)
def test_mutated_bundles_many(m):
    _run(*m)


def test_the_unmutated_bundle_is_accepted():
    root = _base()
    for args in (
        ("simulate", "--bundle", str(root), "--capacity-mah", "0.2", "--json"),
        ("evaluate", "--bundle", str(root), "--threads", "1", "--json"),
    ):
        r = rt3lab(*args)
        assert r.code == 0, r.stderr


@pytest.mark.parametrize("section", ["bp+rpp", "no-distill"])
@pytest.mark.parametrize("value", [None, 3, "x", {}])
def test_a_baseline_list_that_is_not_a_list_is_refused_naming_it(tmp_path, section, value):
    """Found by the fuzz pass: ``baselines.no-distill.sets`` set to null ended in exit 1
    ('NoneType' object is not iterable) in evaluate."""
    root = tmp_path / "b"
    shutil.copytree(_base(), root)
    doc = json.loads((root / "bundle.json").read_text())
    doc["baselines"].setdefault(section, {})["sets"] = value
    (root / "bundle.json").write_text(json.dumps(doc))
    r = rt3lab("evaluate", "--bundle", str(root), "--threads", "1", "--json")
    _check(r, root, 0.0)
    assert r.code == 2 and f"baselines.{section}.sets is" in r.stderr, r
    assert "expected a list" in r.stderr


def test_a_baseline_name_that_is_a_list_ends_in_exit_0_or_2(tmp_path):
    """Found by the fuzz pass: a baseline set's name set to [] ended in exit 1 (unhashable
    type: 'list') in evaluate."""
    root = tmp_path / "b"
    shutil.copytree(_base(), root)
    doc = json.loads((root / "bundle.json").read_text())
    doc["baselines"]["bp+rpp"]["sets"][0]["name"] = []
    (root / "bundle.json").write_text(json.dumps(doc))
    r = rt3lab("evaluate", "--bundle", str(root), "--threads", "1", "--json")
    _check(r, root, 0.0)

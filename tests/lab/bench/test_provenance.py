"""Recorded figures carry the digest of the code that made them, and the check names the
source file that changed since, on a real file tree."""

from __future__ import annotations

import json
import subprocess
import sys

from lab.bench import provenance as pv

TABLE = {"bench.json": pv.Recorded("rt3lab bench toy --json", ("src/**/*.py",))}


def _tree(tmp_path):
    (tmp_path / "src" / "sub").mkdir(parents=True)
    (tmp_path / "src" / "a.py").write_text("A = 1\n")
    (tmp_path / "src" / "sub" / "b.py").write_text("B = 2\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "bench.json").write_text(json.dumps({"speedup": 1.5}))
    return tmp_path


def test_fresh_after_stamp_and_stale_after_a_source_changes(tmp_path):
    root = _tree(tmp_path)
    doc = root / "docs" / "bench.json"
    block = pv.stamp(doc, root, TABLE)
    assert sorted(block["files"]) == ["src/a.py", "src/sub/b.py"]
    assert json.loads(doc.read_text())["speedup"] == 1.5
    assert pv.staleness(doc, root, TABLE) == ""
    (root / "src" / "sub" / "b.py").write_text("B = 3\n")
    assert "changed: src/sub/b.py" in pv.staleness(doc, root, TABLE)
    (root / "src" / "sub" / "b.py").write_text("B = 2\n")
    (root / "src" / "c.py").write_text("C = 0\n")
    assert "added: src/c.py" in pv.staleness(doc, root, TABLE)


def test_unstamped_json_is_stale(tmp_path):
    root = _tree(tmp_path)
    assert pv.staleness(root / "docs" / "bench.json", root, TABLE) == (
        "never stamped with its sources"
    )


def test_docs_check_command_fails_on_a_stale_figure(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "simulator-bench.json").write_text(json.dumps({"speedup": 2.0}))
    pv.stamp(docs / "simulator-bench.json")
    (docs / "mystery.json").write_text("{}")
    run = subprocess.run(
        [sys.executable, "-m", "lab.bench.provenance", "check", str(docs)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1
    assert "stale: docs/mystery.json: not declared" in run.stdout
    assert "simulator-bench.json" not in run.stdout  # fresh: stamped on this code

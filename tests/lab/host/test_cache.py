"""``rt3lab cache info|clear`` on a real cache folder: sizes per part, journals kept unless
asked, links removed and never followed, an unknown part refused in one line."""

from __future__ import annotations

import json

import pytest
from cli_runner import rt3lab


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    (root / "dense").mkdir(parents=True)
    (root / "dense" / "m.safetensors").write_bytes(b"w" * 1000)
    (root / "profiling").mkdir()
    (root / "profiling" / "restore-1.json").write_text("{}")
    (root / "wikitext2-abc.json").write_text("{}")
    (root / "wikitext2-abc.npz").write_bytes(b"z" * 10)
    monkeypatch.setenv("RT3LAB_CACHE", str(root))
    return root


def test_info_counts_each_part(cache):
    out = rt3lab("cache", "info", "--json")
    assert out.code == 0, out.stderr
    parts = {p["name"]: p for p in json.loads(out.stdout)["parts"]}
    assert json.loads(out.stdout)["root"] == str(cache)
    assert (parts["dense"]["files"], parts["dense"]["bytes"]) == (1, 1000)
    assert (parts["corpus"]["files"], parts["corpus"]["bytes"]) == (2, 12)
    assert parts["demo"]["files"] == 0


def test_clear_keeps_restore_journals_unless_asked(cache):
    out = rt3lab("cache", "clear", "--json")
    assert out.code == 0, out.stderr
    assert not (cache / "dense").exists() and not (cache / "wikitext2-abc.npz").exists()
    assert (cache / "profiling" / "restore-1.json").exists()
    assert rt3lab("cache", "clear", "--journals").code == 0
    assert not (cache / "profiling").exists()


def test_clear_one_part_and_links_are_not_followed(cache, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("precious")
    (cache / "demo").symlink_to(outside)
    assert rt3lab("cache", "clear", "demo").code == 0
    assert not (cache / "demo").is_symlink()
    assert (outside / "keep.txt").read_text() == "precious"
    assert (cache / "dense" / "m.safetensors").exists()


def test_unknown_part_is_one_line_exit_2(cache):
    out = rt3lab("cache", "clear", "models")
    assert out.code == 2
    assert out.stderr.strip().count("\n") == 0 and "'models'" in out.stderr
    assert (cache / "dense").exists()

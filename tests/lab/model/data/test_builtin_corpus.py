"""The built-in corpus: real build from the interpreter's own text, cache, corruption."""

import json
import os
import sys

import numpy as np
import pytest
import torch

from lab.model.data import load_lm_corpus
from lab.model.data.builtin import builtin_module_documents, load_builtin_corpus, split_of
from lab.model.data.cache import read_cached

VOCAB = 4000


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("rt3lab-cache")


@pytest.fixture(scope="module")
def corpus(cache):
    return load_builtin_corpus(max_vocab=VOCAB, cache=cache)


def test_size_vocab_and_splits(corpus):
    s = corpus.summary()
    assert s["vocab"] == VOCAB
    assert corpus.vocab.itos[:2] == ("<unk>", "<eos>")
    assert s["train_tokens"] > 200_000
    assert 5_000 < s["valid_tokens"] < s["train_tokens"] / 5
    assert 5_000 < s["test_tokens"] < s["train_tokens"] / 5
    assert s["unk_rate"] < 0.1
    for split in (corpus.train, corpus.valid, corpus.test):
        assert split.dtype == torch.long and split.dim() == 1
        assert int(split.min()) >= 0 and int(split.max()) < VOCAB
    assert s["documents"]["train"] > 10 * s["documents"]["valid"]
    # Common English and Python words made it into the vocabulary.
    for word in ("the", "return", "function", "module", "."):
        assert word in corpus.vocab.stoi


def test_loaded_through_the_spec_from_cache(corpus, cache):
    again = load_lm_corpus("builtin", max_vocab=VOCAB, cache=cache)
    assert again.meta["cached"] is True and corpus.meta["cached"] is False
    assert again.vocab == corpus.vocab
    for a, b in ((again.train, corpus.train), (again.valid, corpus.valid)):
        assert torch.equal(a, b)


def test_cache_files_are_json_and_npz_keyed_by_parameters(corpus, cache):
    jsons = sorted(cache.glob("builtin-*.json"))
    assert len(jsons) == 1
    header = json.loads(jsons[0].read_text())
    assert header["params"]["python"] == sys.version
    assert header["params"]["max_vocab"] == VOCAB
    with np.load(jsons[0].with_suffix(".npz"), allow_pickle=False) as npz:
        assert sorted(npz.files) == ["test", "train", "valid"]


def test_no_side_effect_modules_are_imported(corpus):
    for name in ("antigravity", "this", "turtledemo", "idlelib.idle"):
        assert name not in sys.modules


def test_documents_are_sorted_and_the_split_is_fixed(corpus):
    by_split = corpus.meta["documents_by_split"]
    for split, names in by_split.items():
        assert names == sorted(names)
        assert all(split_of(n, 0.05, 0.05) == split for n in names)
    names = sorted(n for names in by_split.values() for n in names)
    assert len(set(names)) == len(names)
    assert any(n.startswith("topic:") for n in names)
    assert any(n.startswith("stdlib:") for n in names)
    assert any(n.startswith("builtin:") for n in names)


# Splits recorded once: a document keeps its split across versions, machines and processes.
PINNED = {"topic:with": "train", "stdlib:csv": "test", "stdlib:json": "train",
          "doc16": "test", "doc38": "valid", "doc74": "valid", "doc117": "test",
          "doc104": "valid", "builtin:len": "train"}  # fmt: skip


def test_the_split_is_fixed_across_processes_and_pinned(corpus):
    """Not Python's salted ``hash()``: other hash seeds give the same splits in a fresh
    interpreter, and a few recorded splits hold."""
    import subprocess

    assert {n: split_of(n, 0.05, 0.05) for n in PINNED} == PINNED
    names = sorted(n for names in corpus.meta["documents_by_split"].values() for n in names)
    here = [split_of(n, 0.05, 0.05) for n in names]
    code = (
        "import json, sys\n"
        "from lab.model.data.builtin import split_of\n"
        "print(json.dumps([split_of(n, 0.05, 0.05) for n in json.load(sys.stdin)]))"
    )
    for seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", code], input=json.dumps(names), capture_output=True,
            text=True, check=True, env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout  # fmt: skip
        assert json.loads(out) == here, seed


def test_corrupt_cache_is_rebuilt_not_trusted(corpus, cache):
    npz = next(cache.glob("builtin-*.npz"))
    header_path = npz.with_suffix(".json")
    # Same shapes, different tokens: only the checksum can catch this.
    with np.load(npz, allow_pickle=False) as f:
        arrays = {k: f[k].copy() for k in f.files}
    arrays["train"][:10] = 3
    with open(npz, "wb") as f:
        np.savez(f, **arrays)
    rebuilt = load_builtin_corpus(max_vocab=VOCAB, cache=cache)
    assert rebuilt.meta["cached"] is False
    assert torch.equal(rebuilt.train, corpus.train)
    # The rebuild rewrote a valid cache.
    assert load_builtin_corpus(max_vocab=VOCAB, cache=cache).meta["cached"] is True
    params = json.loads(header_path.read_text())["params"]
    assert read_cached(header_path, npz, params, "builtin") is not None
    # Garbage files, a header of other parameters, out-of-range ids: all rejected, no raise.
    good_npz, good_header = npz.read_bytes(), header_path.read_text()
    assert read_cached(header_path, npz, {**params, "max_vocab": 7}, "builtin") is None
    npz.write_bytes(b"not an npz")
    assert read_cached(header_path, npz, params, "builtin") is None
    npz.write_bytes(good_npz)
    header_path.write_text("{broken")
    assert read_cached(header_path, npz, params, "builtin") is None
    header = json.loads(good_header)
    header["vocab"] = header["vocab"][:10]
    header_path.write_text(json.dumps(header))
    assert read_cached(header_path, npz, params, "builtin") is None
    header_path.write_text(good_header)


def test_bad_fractions():
    with pytest.raises(ValueError, match="fraction"):
        load_builtin_corpus(valid_fraction=0.6, test_fraction=0.5, use_cache=False)


def test_replaced_interpreter_hooks_do_not_change_the_corpus(monkeypatch):
    # typer, pytest and IPython replace sys.excepthook/displayhook; the corpus must not move.
    before = dict(builtin_module_documents())
    monkeypatch.setattr(sys, "excepthook", lambda *args: None)
    monkeypatch.setattr(sys, "displayhook", lambda *args: None)
    assert dict(builtin_module_documents()) == before

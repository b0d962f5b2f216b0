"""The built-in corpus: English text that ships with Python itself, so nothing is downloaded.

Documents are the interpreter's documentation topics (``pydoc_data.topics``, the text of
``help('with')`` and friends) and the docstrings of the standard library. Pure-Python
modules are read with ``ast`` from their source files rather than imported, so no module
runs (``antigravity`` opens a browser, ``this`` prints, ``idlelib``/``tkinter``/``turtledemo``
want a display); compiled built-in modules (``math``, ``sys``, ...) are imported, which runs
no Python code. One document is one topic or one module (its docstrings in source order).

Each document goes to train, valid or test by a hash of its name, so the split is fixed and
does not depend on file-system order. The vocabulary (the most frequent training words, plus
``<unk>`` and ``<eos>``) is capped so that training the RT3 model on two cores is quick.
The result is cached as JSON + ``.npz`` (never pickle) under ``$RT3LAB_CACHE`` or
``~/.cache/rt3lab``, keyed by the Python version and the build parameters; a cache that
fails to load or verify is rebuilt.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import inspect
import os
import platform
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lab.model.data.cache import cached_corpus
from lab.model.data.corpus import (
    TOKENIZER_VERSION,
    CorpusError,
    LMCorpus,
    Vocab,
    encode_units,
    paragraphs,
    tokenize,
)

CACHE_FORMAT = 2
DEFAULT_MAX_VOCAB = 8000
DEFAULT_VALID_FRACTION = 0.05
DEFAULT_TEST_FRACTION = 0.05
# Source directories of the standard library that are test suites or demo data, not docs.
_SKIP_DIRS = {"site-packages", "dist-packages", "test", "tests", "idle_test", "__pycache__"}


_DEFS = (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def _module_docs(tree: ast.Module) -> Iterator[str]:
    """Docstrings of the module, its classes and functions, in source order.

    Only statement bodies are visited (definitions can sit inside ``if``/``try`` blocks);
    expressions never hold docstrings, and skipping them makes this ~10x faster than
    ``ast.walk``.
    """
    doc = ast.get_docstring(tree)
    if doc:
        yield doc
    stack = list(reversed(tree.body))
    while stack:
        node = stack.pop()
        if isinstance(node, _DEFS):
            doc = ast.get_docstring(node)
            if doc:
                yield doc
        children = []
        for name in ("body", "orelse", "finalbody", "handlers", "cases"):
            value = getattr(node, name, None)
            if isinstance(value, list):
                children.extend(
                    c for c in value if isinstance(c, ast.stmt | ast.excepthandler | ast.match_case)
                )
        stack.extend(reversed(children))


def stdlib_source_documents() -> Iterator[tuple[str, str]]:
    """``("stdlib:<path>", docstrings)`` for every pure-Python standard-library module."""
    root = Path(sysconfig.get_paths()["stdlib"])
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for filename in sorted(filenames):
            if not filename.endswith(".py"):
                continue
            path = Path(dirpath) / filename
            try:
                tree = ast.parse(path.read_bytes(), filename=str(path))
            except (SyntaxError, ValueError, OSError):
                continue  # e.g. lib2to3 test fixtures written in Python 2
            text = "\n\n".join(_module_docs(tree))
            if text:
                yield f"stdlib:{path.relative_to(root).as_posix()}", text


def builtin_module_documents() -> Iterator[tuple[str, str]]:
    """``("builtin:<name>", docstrings)`` for modules compiled into the interpreter."""
    for name in sorted(sys.builtin_module_names):
        if name.startswith("_"):
            continue  # private helpers: little prose
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        docs = [inspect.getdoc(module) or ""]
        for attr, value in sorted(vars(module).items()):
            # Hooks such as sys.excepthook are often replaced at run time (typer, pytest,
            # IPython); their originals (sys.__excepthook__) keep the corpus the same.
            member = getattr(module, f"__{attr}__", value)
            if not callable(member):
                member = value
            if getattr(member, "__module__", None) != name:
                continue
            if inspect.isbuiltin(member) or isinstance(member, type):
                docs.append(inspect.getdoc(member) or "")
        text = "\n\n".join(d for d in docs if d)
        if text:
            yield f"builtin:{name}", text


def topic_documents() -> Iterator[tuple[str, str]]:
    """``("topic:<name>", text)`` for each of the interpreter's documentation topics."""
    try:
        from pydoc_data.topics import topics
    except ImportError:  # some distributions strip pydoc_data
        return
    for name in sorted(topics):
        yield f"topic:{name}", topics[name]


def builtin_documents() -> list[tuple[str, str]]:
    """All documents of the built-in corpus, sorted by name."""
    docs = [*topic_documents(), *builtin_module_documents(), *stdlib_source_documents()]
    return sorted(docs)


def split_of(doc_id: str, valid_fraction: float, test_fraction: float) -> str:
    """``"train"``, ``"valid"`` or ``"test"`` from a hash of the document name.

    >>> split_of("topic:with", 0.0, 0.0)
    'train'
    """
    digest = hashlib.sha256(doc_id.encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    if u < valid_fraction:
        return "valid"
    if u < valid_fraction + test_fraction:
        return "test"
    return "train"


def _params(max_vocab: int | None, valid_fraction: float, test_fraction: float) -> dict[str, Any]:
    return {
        "format": CACHE_FORMAT,
        "tokenizer": TOKENIZER_VERSION,
        "python": sys.version,
        "implementation": platform.python_implementation(),
        "max_vocab": max_vocab,
        "valid_fraction": valid_fraction,
        "test_fraction": test_fraction,
    }


def build_builtin_corpus(
    max_vocab: int | None = DEFAULT_MAX_VOCAB,
    valid_fraction: float = DEFAULT_VALID_FRACTION,
    test_fraction: float = DEFAULT_TEST_FRACTION,
) -> tuple[dict[str, Any], Vocab, dict[str, Any]]:
    """Build the corpus from scratch: (int32 arrays by split, vocabulary, metadata)."""
    import numpy as np

    if not (0 <= valid_fraction < 1 and 0 <= test_fraction < 1):
        raise CorpusError("builtin corpus: valid/test fractions must lie in [0, 1)")
    if valid_fraction + test_fraction >= 1:
        raise CorpusError("builtin corpus: valid_fraction + test_fraction must be below 1")
    start = time.perf_counter()
    units: dict[str, list[str]] = {"train": [], "valid": [], "test": []}
    names: dict[str, list[str]] = {"train": [], "valid": [], "test": []}
    for doc_id, text in builtin_documents():
        split = split_of(doc_id, valid_fraction, test_fraction)
        units[split].extend(paragraphs(text))
        names[split].append(doc_id)
    vocab = Vocab.build((tokenize(u) for u in units["train"]), max_size=max_vocab)
    arrays = {s: np.asarray(encode_units(units[s], vocab), dtype=np.int32) for s in units}
    meta = {
        "documents": {split: len(n) for split, n in names.items()},
        "documents_by_split": names,
        "build_seconds": round(time.perf_counter() - start, 3),
        "python": platform.python_version(),
        "max_vocab": max_vocab,
        "valid_fraction": valid_fraction,
        "test_fraction": test_fraction,
    }
    return arrays, vocab, meta


def load_builtin_corpus(
    max_vocab: int | None = DEFAULT_MAX_VOCAB,
    valid_fraction: float = DEFAULT_VALID_FRACTION,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    cache: Path | str | None = None,
    use_cache: bool = True,
) -> LMCorpus:
    """The built-in corpus, from the cache when a valid one exists, else built and cached.

    ``cache`` defaults to :func:`contracts.cache.cache_root`. ``meta`` records
    ``build_seconds``,
    ``documents`` per split and whether it came from the cache.
    """
    params = _params(max_vocab, valid_fraction, test_fraction)
    return cached_corpus(
        "builtin",
        params,
        lambda: build_builtin_corpus(max_vocab, valid_fraction, test_fraction),
        cache,
        use_cache,
    )

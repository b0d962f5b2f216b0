"""WikiText-2 from the standard files in a local directory (nothing is downloaded).

The raw variant is ``wiki.train.raw``, ``wiki.valid.raw``, ``wiki.test.raw``; the tokens
variant is ``wiki.{train,valid,test}.tokens`` (rare words already replaced by ``<unk>``).
Both are read line by line as in the word-language-model tutorial: every non-empty line is
tokenized with :func:`lab.model.data.corpus.tokenize` and ends with ``<eos>``. The vocabulary comes
from the training split, optionally capped by ``max_vocab``.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

from lab.model.data.cache import cached_corpus
from lab.model.data.corpus import (
    TOKENIZER_VERSION,
    CorpusError,
    LMCorpus,
    Vocab,
    encode_units,
    tokenize,
)

CACHE_FORMAT = 1
SPLITS = ("train", "valid", "test")
VARIANTS = ("raw", "tokens")


def wikitext2_files(directory: Path, variant: str | None = None) -> tuple[str, dict[str, Path]]:
    """The variant found (``raw`` preferred) and its three files; errors name what is missing.

    ``directory`` may be the folder holding the files or its parent containing
    ``wikitext-2-raw`` / ``wikitext-2`` (as the official archives unpack).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise CorpusError(f"WikiText-2 directory {directory}: not found or not a directory")
    variants = [variant] if variant else list(VARIANTS)
    for v in variants:
        if v not in VARIANTS:
            raise CorpusError(f"WikiText-2 variant {v!r}: expected one of {list(VARIANTS)}")
    candidates = [directory, directory / "wikitext-2-raw", directory / "wikitext-2"]
    for v in variants:
        for folder in candidates:
            files = {s: folder / f"wiki.{s}.{v}" for s in SPLITS}
            if all(f.is_file() for f in files.values()):
                return v, files
    # Name the first missing file of the preferred layout.
    v = variants[0]
    for folder in candidates:
        present = [s for s in SPLITS if (folder / f"wiki.{s}.{v}").is_file()]
        if present:
            missing = [folder / f"wiki.{s}.{v}" for s in SPLITS if s not in present]
            raise CorpusError(f"WikiText-2: missing file {missing[0]}")
    raise CorpusError(
        f"WikiText-2 directory {directory}: missing file {directory / f'wiki.train.{v}'} "
        f"(expected wiki.{{train,valid,test}}.{'raw or .tokens' if variant is None else v})"
    )


def _lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    return [line.strip() for line in text.splitlines() if line.strip()]


def load_wikitext2(
    directory: Path | str,
    variant: str | None = None,
    max_vocab: int | None = None,
    cache: Path | str | None = None,
    use_cache: bool = True,
) -> LMCorpus:
    """WikiText-2 as an :class:`LMCorpus`; ``variant`` ``raw``/``tokens`` or None to detect.

    The tokenized result is cached like the built-in corpus (see :mod:`lab.model.data.cache`),
    keyed by the SHA-256 of the three files, so an edited file is never served stale.
    """
    found, files = wikitext2_files(Path(directory), variant)
    params = {
        "format": CACHE_FORMAT,
        "tokenizer": TOKENIZER_VERSION,
        "variant": found,
        "max_vocab": max_vocab,
        "files": {s: hashlib.sha256(files[s].read_bytes()).hexdigest() for s in SPLITS},
    }

    def build() -> tuple[dict[str, Any], Vocab, dict[str, Any]]:
        import numpy as np

        start = time.perf_counter()
        lines = {s: _lines(files[s]) for s in SPLITS}
        if not lines["train"]:
            raise CorpusError(f"{files['train']}: no text")
        vocab = Vocab.build((tokenize(line) for line in lines["train"]), max_size=max_vocab)
        arrays = {s: np.asarray(encode_units(lines[s], vocab), dtype=np.int32) for s in SPLITS}
        meta = {
            "variant": found,
            "directory": str(Path(directory)),
            "max_vocab": max_vocab,
            "build_seconds": round(time.perf_counter() - start, 3),
        }
        return arrays, vocab, meta

    return cached_corpus("wikitext2", params, build, cache, use_cache)

"""Data: the built-in corpus, WikiText-2 and GLUE, from local files only.

``load_lm_corpus(spec)`` takes ``"builtin"`` or ``"wikitext2:DIR"``; ``load_glue(task, dir)``
reads one GLUE task's TSV files. Nothing here downloads anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.model.data.corpus import CorpusError, LMCorpus, Vocab, tokenize

if TYPE_CHECKING:
    from lab.model.data.glue import GlueData


def load_lm_corpus(spec: str, **options: Any) -> LMCorpus:
    """A language-model corpus from its spec: ``"builtin"`` or ``"wikitext2:DIR"``.

    ``options`` go to :func:`lab.model.data.builtin.load_builtin_corpus` (``max_vocab``,
    ``valid_fraction``, ``test_fraction``, ``cache``, ``use_cache``) or to
    :func:`lab.model.data.wikitext2.load_wikitext2` (``variant``, ``max_vocab``, ``cache``,
    ``use_cache``).

    >>> load_lm_corpus("penn")
    Traceback (most recent call last):
    ...
    lab.model.data.corpus.CorpusError: data spec 'penn': expected 'builtin' or 'wikitext2:DIR'
    """
    if spec == "builtin":
        from lab.model.data.builtin import load_builtin_corpus

        return load_builtin_corpus(**options)
    if spec.startswith("wikitext2:"):
        from lab.model.data.wikitext2 import load_wikitext2

        directory = spec.removeprefix("wikitext2:")
        if not directory:
            raise CorpusError(f"data spec {spec!r}: missing directory after 'wikitext2:'")
        return load_wikitext2(Path(directory), **options)
    raise CorpusError(f"data spec {spec!r}: expected 'builtin' or 'wikitext2:DIR'")


def load_glue(task: str, directory: str | Path) -> GlueData:
    """One GLUE task's train and dev splits from the standard TSV files in ``directory``."""
    from lab.model.data.glue import load_glue as _load

    return _load(task, directory)


__all__ = ["CorpusError", "LMCorpus", "Vocab", "load_glue", "load_lm_corpus", "tokenize"]

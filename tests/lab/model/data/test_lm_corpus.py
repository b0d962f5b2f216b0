"""Tokenizer, vocabulary and the corpus record."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab.model.data.corpus import CorpusError, Vocab, encode_units, paragraphs, tokenize


@given(st.text(max_size=200))
def test_tokens_are_lowercase_and_whitespace_free(text):
    tokens = tokenize(text)
    assert all(t and not any(c.isspace() for c in t) for t in tokens)
    assert all(t == t.lower() for t in tokens)
    # Nothing but whitespace is lost.
    assert "".join(tokens) == "".join(text.lower().split())


def test_punctuation_is_split():
    assert tokenize("Hello, World!  It's 3.14") == [
        "hello", ",", "world", "!", "it", "'", "s", "3", ".", "14"
    ]  # fmt: skip


@given(st.lists(st.lists(st.sampled_from("abcdefgh"), max_size=20), max_size=10),
       st.integers(3, 12))  # fmt: skip
def test_vocab_is_capped_and_ranked_by_frequency(texts, cap):
    vocab = Vocab.build(texts, max_size=cap)
    assert len(vocab) <= cap
    assert vocab.itos[:2] == ("<unk>", "<eos>")
    counts = {}
    for words in texts:
        for w in words:
            counts[w] = counts.get(w, 0) + 1
    kept = vocab.itos[2:]
    ranks = [(-counts[w], w) for w in kept]
    assert ranks == sorted(ranks)
    dropped = set(counts) - set(kept)
    if kept and dropped:
        assert min(counts[w] for w in kept) >= max(counts[w] for w in dropped)
    assert vocab.decode(vocab.encode(kept)) == list(kept)


def test_encode_units_appends_eos_and_maps_unknown():
    vocab = Vocab.build([["a", "b"]], max_size=None)
    assert encode_units(["a b", "", "c a"], vocab) == [2, 3, 1, 0, 2, 1]


def test_paragraphs_join_wrapped_lines():
    assert list(paragraphs("one\n  two\n\n\nthree\n   \nfour")) == ["one two", "three", "four"]


def test_bad_vocab():
    with pytest.raises(CorpusError):
        Vocab(("a", "<eos>"))
    with pytest.raises(CorpusError):
        Vocab.build([["a"]], max_size=2)

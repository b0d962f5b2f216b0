"""WikiText-2 loading from small files in the standard layout."""

import pytest
import torch

from lab.model.data import CorpusError, load_lm_corpus
from lab.model.data.wikitext2 import load_wikitext2

TRAIN = " = Valkyria Chronicles = \n\n The game began in 2010 . It was fun .\n The game ended .\n"
VALID = " The game was fun .\n"
TEST = " A new game began .\n"


def write_split(folder, variant, texts=(TRAIN, VALID, TEST)):
    folder.mkdir(parents=True, exist_ok=True)
    for split, text in zip(("train", "valid", "test"), texts, strict=True):
        (folder / f"wiki.{split}.{variant}").write_text(text, encoding="utf-8")


def test_raw_files_load_with_eos_per_line(tmp_path):
    write_split(tmp_path, "raw")
    corpus = load_lm_corpus(f"wikitext2:{tmp_path}")
    words = corpus.vocab.decode(corpus.train.tolist())
    assert words[:5] == ["=", "valkyria", "chronicles", "=", "<eos>"]
    assert words.count("<eos>") == 3  # three non-empty lines
    assert corpus.vocab.decode(corpus.valid.tolist()) == [
        "the", "game", "was", "fun", ".", "<eos>"
    ]  # fmt: skip
    # "new" is not in the training text: it becomes <unk>
    assert corpus.vocab.decode(corpus.test.tolist())[1] == "<unk>"
    assert corpus.meta["variant"] == "raw"
    assert corpus.name == "wikitext2"


def test_tokens_variant_keeps_unk_and_parent_dir_works(tmp_path):
    write_split(tmp_path / "wikitext-2", "tokens", (" the <unk> sat .\n", " the cat\n", " <unk>\n"))
    corpus = load_wikitext2(tmp_path)
    assert corpus.meta["variant"] == "tokens"
    assert corpus.vocab.decode(corpus.train.tolist()) == ["the", "<unk>", "sat", ".", "<eos>"]
    assert "<unk>" not in corpus.vocab.itos[2:]


def test_vocab_cap(tmp_path):
    write_split(tmp_path, "raw")
    corpus = load_wikitext2(tmp_path, max_vocab=5)
    assert len(corpus.vocab) == 5
    assert corpus.vocab.itos[:2] == ("<unk>", "<eos>")


def test_missing_directory(tmp_path):
    with pytest.raises(CorpusError, match=r"WikiText-2 directory .*nope: not found"):
        load_lm_corpus(f"wikitext2:{tmp_path / 'nope'}")


def test_missing_file_is_named(tmp_path):
    write_split(tmp_path, "raw")
    (tmp_path / "wiki.valid.raw").unlink()
    with pytest.raises(CorpusError, match=r"missing file .*wiki\.valid\.raw"):
        load_wikitext2(tmp_path)
    with pytest.raises(CorpusError, match=r"missing file .*wiki\.train\.raw"):
        load_wikitext2(tmp_path / "empty" if (tmp_path / "empty").mkdir() is None else tmp_path)


def test_bad_spec_and_variant(tmp_path):
    with pytest.raises(CorpusError, match="missing directory"):
        load_lm_corpus("wikitext2:")
    with pytest.raises(CorpusError, match="variant 'bpe'"):
        load_wikitext2(tmp_path, variant="bpe")


def test_non_utf8_file(tmp_path):
    write_split(tmp_path, "raw")
    (tmp_path / "wiki.test.raw").write_bytes(b"ok \xff\xfe bad\n")
    with pytest.raises(CorpusError, match=r"wiki\.test\.raw: not UTF-8"):
        load_wikitext2(tmp_path)


def test_cached_and_invalidated_when_a_file_changes(tmp_path):
    write_split(tmp_path / "wt", "raw")
    cache = tmp_path / "cache"
    first = load_wikitext2(tmp_path / "wt", cache=cache)
    second = load_wikitext2(tmp_path / "wt", cache=cache)
    assert (first.meta["cached"], second.meta["cached"]) == (False, True)
    assert torch.equal(first.train, second.train) and first.vocab == second.vocab
    (tmp_path / "wt" / "wiki.valid.raw").write_text(" the game ended .\n")
    third = load_wikitext2(tmp_path / "wt", cache=cache)
    assert third.meta["cached"] is False
    assert third.vocab.decode(third.valid.tolist()) == ["the", "game", "ended", ".", "<eos>"]

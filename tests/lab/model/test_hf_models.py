"""Hugging Face classifiers from local checkpoints: tiny models saved to tmp_path."""

import json

import pytest
import torch

from lab.model import build_model, prunable_layers
from lab.model.hf import CheckpointError, checkpoint_config, load_hf_classifier, load_hf_tokenizer

transformers = pytest.importorskip("transformers")


def save_bert(path, num_labels=3):
    config = transformers.BertConfig(
        vocab_size=60, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=8, max_position_embeddings=32, num_labels=num_labels,
    )  # fmt: skip
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(config).eval()
    model.save_pretrained(path)
    return model


def save_distilbert(path):
    config = transformers.DistilBertConfig(
        vocab_size=60, dim=16, n_layers=1, n_heads=2, hidden_dim=8, max_position_embeddings=32
    )
    model = transformers.DistilBertForSequenceClassification(config).eval()
    model.save_pretrained(path)
    return model


def test_bert_round_trips_with_identical_outputs(tmp_path):
    original = save_bert(tmp_path / "bert")
    loaded = build_model("hf", {"path": str(tmp_path / "bert")})
    assert not loaded.training
    ids = torch.randint(0, 60, (2, 7))
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids=ids).logits, original(input_ids=ids).logits)


def test_prunable_layers_cover_linears_and_embeddings(tmp_path):
    save_bert(tmp_path / "bert")
    layers = prunable_layers(load_hf_classifier(tmp_path / "bert"))
    assert "bert.embeddings.word_embeddings" in layers
    assert "bert.encoder.layer.1.attention.self.query" in layers
    assert "bert.encoder.layer.1.output.dense" in layers
    assert "classifier" in layers
    assert all(isinstance(m, torch.nn.Linear | torch.nn.Embedding) for m in layers.values())
    assert not any("LayerNorm" in name for name in layers)


def test_distilbert_and_new_head_size(tmp_path):
    save_distilbert(tmp_path / "distil")
    model = build_model("hf", {"path": str(tmp_path / "distil"), "num_labels": 5})
    assert model.classifier.out_features == 5
    assert "distilbert.transformer.layer.0.ffn.lin1" in prunable_layers(model)


def make_tokenizer(words=("cat", "sat", "good", "bad", "film")):
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    return transformers.BertTokenizer(vocab={w: i for i, w in enumerate([*specials, *words])})


def test_tokenizer_saved_beside_the_checkpoint(tmp_path):
    save_bert(tmp_path / "bert")
    tokenizer = make_tokenizer()
    tokenizer.save_pretrained(tmp_path / "bert")
    loaded = load_hf_tokenizer(tmp_path / "bert")
    ids = loaded("Cat sat")["input_ids"]
    assert ids == tokenizer("Cat sat")["input_ids"] == [2, 5, 6, 3]


def test_missing_directory(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        build_model("hf", {"path": str(tmp_path / "nope")})


def test_directory_that_is_not_a_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match=r"missing config\.json"):
        load_hf_classifier(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_hf_classifier(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(CheckpointError, match="model_type 'gpt2'"):
        load_hf_classifier(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(CheckpointError, match="no weights"):
        checkpoint_config(tmp_path)


def test_no_tokenizer_files(tmp_path):
    save_bert(tmp_path / "bert")
    with pytest.raises(CheckpointError, match="tokenizer"):
        load_hf_tokenizer(tmp_path / "bert")


def test_hf_config_needs_a_path():
    with pytest.raises(ValueError, match="'path'"):
        build_model("hf", {})

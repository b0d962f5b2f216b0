"""The RT3 Transformer: shapes, causality, module names, config validation."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lab.model import build_model, prunable_layers
from lab.model.transformer import (
    ModelConfigError,
    RT3Config,
    RT3TransformerLM,
    sinusoidal_encoding,
    tiny_config,
)


def tiny(vocab=40, **over):
    return build_model("rt3-transformer", {**tiny_config(vocab), "seed": 0, **over})


def test_rt3_defaults_are_the_papers():
    c = RT3Config(vocab_size=100)
    assert (c.emb, c.ff, c.layers, c.heads, c.dropout) == (800, 200, 2, 4, 0.2)


def test_full_size_model_has_rt3_shapes():
    model = build_model("rt3-transformer", {"vocab_size": 1000})
    shapes = {name: tuple(m.weight.shape) for name, m in prunable_layers(model).items()}
    assert shapes["embedding"] == (1000, 800)
    assert shapes["layers.0.self_attn.in_proj"] == (2400, 800)
    assert shapes["layers.1.self_attn.out_proj"] == (800, 800)
    assert shapes["layers.1.linear1"] == (200, 800)
    assert shapes["layers.1.linear2"] == (800, 200)
    assert shapes["decoder"] == (1000, 800)
    assert len(shapes) == 10


def test_prunable_layers_names_and_order():
    names = list(prunable_layers(tiny(layers=2)))
    assert names == [
        "embedding",
        "layers.0.self_attn.in_proj",
        "layers.0.self_attn.out_proj",
        "layers.0.linear1",
        "layers.0.linear2",
        "layers.1.self_attn.in_proj",
        "layers.1.self_attn.out_proj",
        "layers.1.linear1",
        "layers.1.linear2",
        "decoder",
    ]


def test_positional_encoding_is_not_a_parameter_or_state():
    model = tiny()
    assert not any("pos" in name for name, _ in model.named_parameters())
    assert not any("pos" in key for key in model.state_dict())


def test_seeded_build_is_reproducible_and_seed_matters():
    a, b, c = tiny(), tiny(), tiny(seed=1)
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key])
    assert not torch.equal(a.embedding.weight, c.embedding.weight)


@settings(max_examples=15, deadline=None)
@given(t=st.integers(1, 20), cut=st.integers(0, 19), seed=st.integers(0, 1000))
def test_causal_future_tokens_do_not_change_past_logits(t, cut, seed):
    cut = min(cut, t - 1)
    model = tiny().eval()
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 40, (2, t), generator=g)
    y = x.clone()
    y[:, cut + 1 :] = torch.randint(0, 40, y[:, cut + 1 :].shape, generator=g)
    with torch.no_grad():
        a, b = model(x), model(y)
    torch.testing.assert_close(a[:, : cut + 1], b[:, : cut + 1], rtol=1e-5, atol=1e-5)


def test_batch_first_and_batch_independent():
    model = tiny().eval()
    x = torch.randint(0, 40, (3, 9))
    with torch.no_grad():
        whole = model(x)
        one = model(x[1:2])
    assert whole.shape == (3, 9, 40)
    torch.testing.assert_close(whole[1:2], one, rtol=1e-5, atol=1e-5)


def test_longer_sequences_than_the_cached_encoding_work():
    model = tiny().eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 200, dtype=torch.long))
    assert out.shape == (1, 200, 40)
    torch.testing.assert_close(model.pos_encoding[:200], sinusoidal_encoding(200, 16))


def test_masking_a_weight_changes_the_output():
    # Pruning works by zeroing weights in place: the forward must use them directly.
    model = tiny().eval()
    x = torch.randint(0, 40, (1, 5))
    with torch.no_grad():
        before = model(x)
        prunable_layers(model)["layers.0.linear1"].weight.zero_()
        after = model(x)
    assert not torch.allclose(before, after)


def test_dropout_only_in_training():
    model = tiny(dropout=0.5)
    x = torch.randint(0, 40, (2, 6))
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
    model.train()
    with torch.no_grad():
        assert not torch.equal(model(x), model(x))


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"vocab_size": 0}, "vocab_size"),
        ({"vocab_size": 10, "emb": 10, "heads": 3}, "divisible"),
        ({"vocab_size": 10, "dropout": 1.0}, "dropout"),
        ({"vocab_size": 10, "embed": 8}, "embed"),
        ({"emb": 8}, "vocab_size"),
    ],
)
def test_bad_configs_name_the_field(config, field):
    with pytest.raises(ModelConfigError, match=field):
        RT3TransformerLM.from_config(config)


def test_unknown_kind_and_bad_token_shape():
    with pytest.raises(ValueError, match="model kind 'gpt'"):
        build_model("gpt", {})
    with pytest.raises(ValueError, match="batch, seq"):
        tiny()(torch.zeros(5, dtype=torch.long))


def test_config_round_trips_through_dict():
    model = tiny()
    again = RT3TransformerLM.from_config(model.config.to_dict())
    assert again.config == model.config
    again.load_state_dict(model.state_dict())

"""The training loop and LM scoring, on a tiny model and synthetic token streams.

Tiny models train single-threaded (``threads=1``): on a shared two-core machine, OpenMP
threads waiting on each other make tiny ops tens of times slower.
"""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lab.model import build_model, prunable_layers
from lab.model.training import (
    TrainingError,
    evaluate_lm,
    lm_batches,
    num_batches,
    train_lm,
)
from lab.model.transformer import tiny_config

VOCAB = 24


def tiny(seed=0):
    return build_model("rt3-transformer", {**tiny_config(VOCAB), "seed": seed})


def cyclic_stream(n=4000, period=6):
    # A deterministic sequence a model can learn perfectly: 2,3,...,period+1 repeated.
    return torch.arange(n) % period + 2


@settings(max_examples=40, deadline=None)
@given(n=st.integers(4, 300), b=st.integers(1, 8), s=st.integers(1, 40))
def test_batches_cover_each_sub_stream_and_targets_shift_by_one(n, b, s):
    data = torch.arange(n)
    if n // b < 2:
        with pytest.raises(TrainingError):
            list(lm_batches(data, b, s))
        return
    batches = list(lm_batches(data, b, s))
    assert len(batches) == num_batches(data, b, s)
    width = n // b
    xs = torch.cat([x for x, _ in batches], dim=1)
    ys = torch.cat([y for _, y in batches], dim=1)
    streams = data[: width * b].view(b, width)
    assert torch.equal(xs, streams[:, :-1])
    assert torch.equal(ys, streams[:, 1:])
    assert all(x.shape[1] <= s and x.shape == y.shape for x, y in batches)


def test_shuffled_batches_are_a_permutation():
    data = torch.arange(500)
    plain = {tuple(x[0].tolist()) for x, _ in lm_batches(data, 4, 7)}
    g = torch.Generator().manual_seed(3)
    shuffled = [tuple(x[0].tolist()) for x, _ in lm_batches(data, 4, 7, shuffle=True, generator=g)]
    assert set(shuffled) == plain and len(shuffled) == len(plain)


def test_training_learns_a_cyclic_sequence():
    model = tiny()
    data = cyclic_stream(2000)
    before = evaluate_lm(model, data[:600], threads=1)
    result = train_lm(model, data, epochs=3, batch_size=8, seq_len=12, lr=1e-2, threads=1)
    after = evaluate_lm(model, data[:600], threads=1)
    assert result.steps == 3 * num_batches(data, 8, 12)
    assert result.stopped_by == "epochs"
    assert after.loss < before.loss / 3
    assert after.accuracy > 0.95
    assert not model.training


def test_training_is_deterministic_for_a_seed():
    data = cyclic_stream(1500)
    a, b = tiny(), tiny()
    train_lm(a, data, max_steps=12, batch_size=4, seed=5, threads=1)
    train_lm(b, data, max_steps=12, batch_size=4, seed=5, threads=1)
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key


def test_hooks_penalty_after_step_and_progress():
    data = cyclic_stream(1500)
    model = tiny()
    layer = prunable_layers(model)["layers.0.linear1"]
    mask = torch.ones_like(layer.weight, dtype=torch.bool)
    mask[:, ::2] = False
    layer.weight.data.mul_(mask)
    seen = []
    penalties = []

    def penalty(m):
        p = 1e-3 * m.decoder.weight.abs().sum()
        penalties.append(float(p.detach()))
        return p

    def reapply(m, step):
        seen.append(step)
        prunable_layers(m)["layers.0.linear1"].weight.mul_(mask)

    progress = []
    result = train_lm(
        model,
        data,
        max_steps=6,
        batch_size=4,
        penalty=penalty,
        after_step=reapply,
        progress=progress.append,
        threads=1,
    )
    assert seen == [1, 2, 3, 4, 5, 6]
    assert len(penalties) == 6
    assert [p.step for p in progress] == [1, 2, 3, 4, 5, 6]
    assert progress[-1].tokens == result.tokens
    assert result.stopped_by == "max_steps"
    assert torch.all(layer.weight[~mask] == 0)


def test_loss_fn_replaces_the_loss():
    calls = []

    def loss_fn(m, x, y):
        calls.append(x.shape)
        return m(x).float().pow(2).mean()

    model = tiny()
    train_lm(model, cyclic_stream(800), max_steps=3, batch_size=4, loss_fn=loss_fn, threads=1)
    assert len(calls) == 3


def test_time_budget_stops_early():
    result = train_lm(
        tiny(), cyclic_stream(20000), epochs=50, batch_size=2, time_budget_s=0.0, threads=1
    )
    assert result.stopped_by == "time_budget" and result.steps == 1


def test_sgd_and_bf16_run():
    model = tiny()
    result = train_lm(
        model,
        cyclic_stream(800),
        max_steps=2,
        batch_size=4,
        optimizer="sgd",
        precision="bf16",
        threads=1,
    )
    assert result.steps == 2
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_bad_arguments_are_named():
    with pytest.raises(TrainingError, match="optimizer 'adam'"):
        train_lm(tiny(), cyclic_stream(800), optimizer="adam", threads=1)
    with pytest.raises(TrainingError, match="precision"):
        train_lm(tiny(), cyclic_stream(800), precision="fp8", threads=1)
    with pytest.raises(TrainingError, match="1-D"):
        evaluate_lm(tiny(), torch.zeros(2, 3, dtype=torch.long), threads=1)
    with pytest.raises(TrainingError, match="too few"):
        evaluate_lm(tiny(), torch.zeros(1, dtype=torch.long), threads=1)


def test_evaluate_matches_a_hand_computation_and_ignores_batch_size():
    model = tiny(seed=2).eval()
    data = torch.randint(0, VOCAB, (101,), generator=torch.Generator().manual_seed(0))
    score = evaluate_lm(model, data, seq_len=10, batch_size=3, threads=1)
    other = evaluate_lm(model, data, seq_len=10, batch_size=64, threads=1)
    assert score.tokens == 100
    assert math.isclose(score.loss, other.loss, rel_tol=1e-6)
    assert score.accuracy == other.accuracy
    # By hand: each window of 10 predictions, every target counted once.
    nll, correct = 0.0, 0
    with torch.no_grad():
        for start in range(0, 100, 10):
            x = data[start : start + 10].unsqueeze(0)
            y = data[start + 1 : start + 11]
            logp = torch.log_softmax(model(x)[0], -1)
            nll -= float(logp[torch.arange(10), y].sum())
            correct += int((logp.argmax(-1) == y).sum())
    assert math.isclose(score.loss, nll / 100, rel_tol=1e-5)
    assert score.accuracy == correct / 100
    assert math.isclose(score.perplexity, math.exp(score.loss), rel_tol=1e-9)


def test_evaluate_restores_training_mode_and_counts_a_ragged_tail():
    model = tiny().train()
    score = evaluate_lm(model, cyclic_stream(38), seq_len=5, threads=1)
    assert model.training
    assert score.tokens == 37


def test_threads_are_restored_after_training():
    before = torch.get_num_threads()
    train_lm(tiny(), cyclic_stream(400), max_steps=1, batch_size=2, threads=1)
    assert torch.get_num_threads() == before
    with pytest.raises(TrainingError, match="threads"):
        evaluate_lm(tiny(), cyclic_stream(40), threads=0)


def test_classifier_fine_tunes_on_a_glue_split(tmp_path):
    transformers = pytest.importorskip("transformers")
    from lab.model.data import load_glue
    from lab.model.data.glue import encode_glue
    from lab.model.hf import load_hf_classifier
    from lab.model.training import evaluate_classifier, train_classifier

    rows = [f"{w} film {'indeed ' * (i % 3)}\t{int(w == 'good')}" for i in range(40)
            for w in ("good", "bad")]  # fmt: skip
    (tmp_path / "SST-2").mkdir()
    for split in ("train", "dev"):
        (tmp_path / "SST-2" / f"{split}.tsv").write_text("sentence\tlabel\n" + "\n".join(rows))
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = {w: i for i, w in enumerate([*specials, "good", "bad", "film", "indeed"])}
    tokenizer = transformers.BertTokenizer(vocab=vocab)
    config = transformers.BertConfig(
        vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=16, max_position_embeddings=16, num_labels=2,
    )  # fmt: skip
    torch.manual_seed(0)
    transformers.BertForSequenceClassification(config).save_pretrained(tmp_path / "ckpt")
    model = load_hf_classifier(tmp_path / "ckpt")
    glue = load_glue("sst2", tmp_path)
    train = encode_glue(glue.splits["train"], tokenizer, max_length=16)
    dev = encode_glue(glue.splits["dev"], tokenizer, max_length=16)
    assert train.input_ids.shape[0] == 80 and train.labels.dtype == torch.long
    steps = []
    result = train_classifier(
        model, train, epochs=8, batch_size=16, lr=3e-3, threads=1,
        after_step=lambda m, step: steps.append(step),
    )  # fmt: skip
    score = evaluate_classifier(model, dev, "sst2", threads=1)
    assert result.steps == 8 * 5 == len(steps)
    assert score.metric == "accuracy" and score.examples == 80
    assert score.value == score.accuracy == 1.0


def test_glue_metrics_by_hand():
    from lab.model.training import glue_metric

    p, t = torch.tensor([1, 1, 0, 0, 1]), torch.tensor([1, 0, 0, 1, 1])
    # tp=2 fp=1 tn=1 fn=1
    assert glue_metric("mrpc", p, t) == ("f1", 2 * 2 / (2 * 2 + 1 + 1))
    assert glue_metric("cola", p, t) == (
        "matthews",
        pytest.approx((2 * 1 - 1 * 1) / math.sqrt(3 * 3 * 2 * 2)),
    )
    name, r = glue_metric("stsb", torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.0, 4.0, 6.5]))
    assert name == "pearson" and 0.99 < r < 1.0

"""Distillation: the loss's properties on real tensors, the hidden states of RT3's LM, one
teacher forward per joint step, and compress / evaluate with and without it."""

import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from device_profiles import load_profile
from lab.cli import main
from lab.compression.budget import TEST
from lab.compression.distill import (
    Distillation,
    DistillationError,
    Teacher,
    TeacherOutput,
    captured_hidden,
    hidden_loss,
    soft_loss,
    student_loss,
)
from lab.compression.evaluation import EvaluationMismatch, evaluate_bundle
from lab.compression.finetune import LMObjective, StepPlan, joint_steps, masked_params
from lab.compression.options import CompressOptions
from lab.compression.pipeline import compress, load_lm_data
from lab.model.transformer import RT3TransformerLM
from lab.runtime.bundle import Bundle


def _lm(seed=0, vocab=40):
    torch.manual_seed(seed)
    return RT3TransformerLM(vocab_size=vocab, emb=16, ff=8, layers=2, heads=2, dropout=0.0)


def test_the_soft_term_is_zero_when_the_student_is_the_teacher():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 5, 11, generator=g)
    assert float(soft_loss(logits, logits.clone(), 2.0)) == pytest.approx(0.0, abs=1e-6)
    # logits only (alpha 0, no hidden term): the whole loss is zero
    d = Distillation(temperature=3.0, alpha=0.0, hidden_weight=0.0)
    hard = torch.tensor(4.2)
    assert float(d.loss(hard, logits, TeacherOutput(logits.clone()))) == pytest.approx(0, abs=1e-6)
    # ... and another student's is not
    other = torch.randn(3, 5, 11, generator=g)
    assert float(soft_loss(other, logits, 2.0)) > 0.01


def test_the_soft_term_is_t_squared_times_kl_at_temperature_t():
    g = torch.Generator().manual_seed(1)
    s, t = torch.randn(4, 7, generator=g), torch.randn(4, 7, generator=g)
    for temp in (1.0, 2.0, 5.0):
        p_t = F.softmax(t / temp, dim=-1)
        kl = (p_t * (p_t.log() - F.log_softmax(s / temp, dim=-1))).sum(-1).mean()
        assert float(soft_loss(s, t, temp)) == pytest.approx(temp**2 * float(kl), rel=1e-5)


def test_t_squared_keeps_the_gradient_on_one_scale_as_t_grows():
    """Hinton's reason for T^2: the soft term's gradient tends to (z_s - z_t) / N, whatever
    the temperature; without the factor it would shrink as 1 / T^2."""
    g = torch.Generator().manual_seed(2)
    t = torch.randn(2, 9, generator=g)
    t = t - t.mean(-1, keepdim=True)

    def grad(temp):
        s = (t + 0.3 * torch.randn(2, 9, generator=g)).requires_grad_(True)
        soft_loss(s, t, temp).backward()
        return s.grad.norm()

    g.manual_seed(3)
    at10 = grad(10.0)
    g.manual_seed(3)
    at40 = grad(40.0)
    assert float(at40 / at10) == pytest.approx(1.0, abs=0.05)


def test_a_single_logit_is_distilled_by_mse():
    s, t = torch.tensor([[0.5], [1.0]]), torch.tensor([[1.5], [1.0]])
    assert float(soft_loss(s, t, 4.0)) == pytest.approx(0.5)


def test_the_loss_weighs_its_three_terms():
    g = torch.Generator().manual_seed(4)
    s, t = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    hs, ht = [torch.randn(2, 3, generator=g)], [torch.randn(2, 3, generator=g)]
    hard = torch.tensor(2.0)
    d = Distillation(temperature=2.0, alpha=0.3, hidden_weight=0.7)
    want = 0.3 * 2.0 + 0.7 * float(soft_loss(s, t, 2.0)) + 0.7 * float(F.mse_loss(hs[0], ht[0]))
    assert float(d.loss(hard, s, TeacherOutput(t, tuple(ht)), hs)) == pytest.approx(want)


def test_hidden_states_are_compared_where_the_shapes_match():
    a, b = torch.ones(2, 3), torch.zeros(2, 3)
    assert float(hidden_loss([a, torch.ones(4)], [b, torch.zeros(5)])) == pytest.approx(1.0)
    assert float(hidden_loss([a], [b, b])) == pytest.approx(1.0)  # the student's first layers
    assert float(hidden_loss([torch.ones(4)], [b])) == 0.0  # nothing comparable


def test_the_lm_gives_its_embedding_output_and_every_layer_output():
    model = _lm()
    tokens = torch.randint(0, 40, (3, 6))
    with captured_hidden(model) as hidden:
        model(tokens)
    assert len(hidden) == 3  # embedding output + 2 layers
    assert all(h.shape == (3, 6, 16) for h in hidden)
    model(tokens)
    assert len(hidden) == 3  # hooks removed on exit


def test_gradient_reaches_the_masked_student_through_logits_and_hidden_states():
    teacher_model, student = _lm(0), _lm(1)
    teacher = Teacher(teacher_model, Distillation())
    obj = LMObjective(torch.randint(0, 40, (200,)), 6)
    inputs, targets = next(obj.batches(torch.Generator().manual_seed(0), 4))
    told = teacher.output(obj, inputs)
    assert len(told.hidden) == 3 and not told.logits.requires_grad
    mask = {"layers.0.linear1": torch.rand(8, 16) > 0.5}
    params = masked_params(student, mask)
    loss = student_loss(obj, student, inputs, targets, told, teacher.config, params)
    loss.backward()
    w = student.layers[0].linear1.weight
    assert w.grad is not None and float(w.grad[mask["layers.0.linear1"]].abs().sum()) > 0
    assert bool((w.grad[~mask["layers.0.linear1"]] == 0).all())
    # the hidden term alone carries gradient to a layer below the decoder
    student.zero_grad()
    only_hidden = Distillation(alpha=0.0, hidden_weight=1.0)
    with captured_hidden(student) as hidden:
        logits = functional_call(student, masked_params(student, mask), (inputs,))
    only_hidden.loss(torch.tensor(0.0), logits.detach(), told, hidden).backward()
    assert float(student.embedding.weight.grad.abs().sum()) > 0


def test_a_joint_step_runs_the_teacher_once_for_all_its_sets():
    model = _lm(1)
    teacher = Teacher(_lm(0), Distillation())
    before = {k: v.clone() for k, v in teacher.model.state_dict().items()}
    calls = []
    teacher.model.register_forward_hook(lambda *_: calls.append(1))
    obj = LMObjective(torch.randint(0, 40, (300,)), 6)
    sets = [{"decoder": torch.rand(40, 16) > p} for p in (0.2, 0.5, 0.8)]
    keep = {"decoder": torch.ones(40, 16, dtype=torch.bool)}
    plan = StepPlan(4, torch.Generator().manual_seed(0), 4, 1e-3, teacher=teacher)
    loss = joint_steps(model, lambda _g: sets, (0.5, 0.3, 0.2), obj, keep, plan)
    assert len(calls) == 4 and math.isfinite(loss)
    after = teacher.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the teacher is frozen
    assert not teacher.model.training


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"temperature": 0}, "--distill-temperature 0: expected a finite number > 0"),
        ({"temperature": -1.5}, "--distill-temperature -1.5"),
        ({"temperature": float("nan")}, "--distill-temperature nan"),
        ({"alpha": 1.5}, r"--distill-alpha 1.5: expected a number in \[0, 1\]"),
        ({"hidden_weight": -0.1}, "--distill-hidden-weight -0.1"),
    ],
)
def test_bad_settings_are_refused_by_option(kw, match):
    with pytest.raises(DistillationError, match=match):
        Distillation(**kw)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--distill-temperature", "0"], "--distill-temperature 0.0: expected"),
        (["--distill-temperature", "-2"], "--distill-temperature -2.0: expected"),
        (["--distill-alpha", "2"], "--distill-alpha 2.0: expected"),
        (["--no-distill", "--distill-ablation"], "--distill-ablation with --no-distill"),
    ],
)
def test_bad_distillation_options_are_one_line_exit_2(tmp_path, capsys, args, said):
    with pytest.raises(SystemExit) as exc:
        main(["compress", "--quick", "--out", str(tmp_path / "o"), *args])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "Traceback" not in err
    squeeze = "".join  # the terminal may wrap the line
    assert squeeze(said.split()) in squeeze(err.split())
    assert not (tmp_path / "o").exists()  # refused before any work


def _run(wiki_dir, out, **kw):
    data = load_lm_data(f"wikitext2:{wiki_dir}", TEST)
    opts = CompressOptions("rt3-paper", out, TEST, seed=1, threads=1, estimator="op-count", **kw)
    return compress(data, load_profile("rt3-paper"), opts)


def test_no_distill_is_recorded_and_trains_other_weights(wiki_dir, tmp_path):
    on = Bundle.load(_run(wiki_dir, tmp_path / "on"))
    off = Bundle.load(_run(wiki_dir, tmp_path / "off", distill=None))
    d = on.provenance["distill"]
    assert d["on"] is True and (d["temperature"], d["alpha"], d["hidden_weight"]) == (2, 0.5, 1)
    assert d["ablation"] is False and len(d["applied_to"]) == 3
    assert off.provenance["distill"] == {"on": False, "ablation": False}
    assert off.provenance["run_key"] != on.provenance["run_key"]
    # the same dense model taught, so distillation alone moved the BP model
    assert torch.equal(on.dense["decoder.weight"], off.dense["decoder.weight"])
    sha = "bp_weights_sha256"
    assert on.provenance["reproducibility"][sha] != off.provenance["reproducibility"][sha]


def test_the_ablation_shows_each_set_with_and_without_distillation(wiki_dir, tmp_path, capsys):
    out = _run(wiki_dir, tmp_path / "b", distill_ablation=True)
    b = Bundle.load(out)
    assert b.provenance["distill"]["ablation"] is True
    held = b.baselines["no-distill"]
    assert held["compare_to"] == ["pp-1400mhz", "pp-1000mhz", "pp-800mhz", "bp"]
    assert set(b.baselines["kept"]["no-distill"]["sets"]) == {s["name"] for s in held["sets"]}
    ev = evaluate_bundle(out)
    rows = {r.name: r for r in ev.rows}
    assert rows["dense"].accuracy_no_distill is None
    for name, rec in zip(held["compare_to"], held["sets"], strict=True):
        assert rows[name].accuracy_no_distill == pytest.approx(rec["accuracy"], abs=1e-4)
        assert rows[name].sparsity == pytest.approx(rec["sparsity"])  # the same masks
    assert [c.method for c in ev.comparisons if c.method.startswith("distilled")] == [
        "distilled pp-1400mhz", "distilled pp-1000mhz", "distilled pp-800mhz", "distilled bp",
    ]  # fmt: skip
    assert "distilled" not in " ".join(ev.checks)  # the ablation is no check of RT3's claims
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "--bundle", str(out), "--json"])
    assert exc.value.code == 0
    doc = json.loads(capsys.readouterr().out)
    assert all("accuracy_no_distill" in s for s in doc["sets"])
    # a recorded undistilled figure the re-score does not reproduce: refused, one line
    path = out / "bundle.json"
    raw = json.loads(path.read_text())
    raw["baselines"]["no-distill"]["sets"][2]["accuracy"] += 0.05
    path.write_text(json.dumps(raw))
    with pytest.raises(EvaluationMismatch, match=r"baselines\.no-distill\.sets\[2\]\.accuracy"):
        evaluate_bundle(out)
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "--bundle", str(out)])
    assert exc.value.code == 2


def test_the_bench_records_every_set_with_and_without_distillation(wiki_dir, tmp_path):
    """``rt3lab bench distill`` on the test budget: every set's accuracy distilled and not
    (same sets; and a --no-distill run), dense, and the sparsest set's gap."""
    from lab.bench.distill import markdown_table, run_distill_bench

    doc = run_distill_bench("test", seed=1, data=f"wikitext2:{wiki_dir}", out=tmp_path / "o")
    assert doc["distill"]["on"] is True and doc["budget"] == "test"
    names = [s["set"] for s in doc["same_sets"]]
    assert names == ["pp-1400mhz", "pp-1000mhz", "pp-800mhz", "bp"]
    assert all(0 <= s["no_distill_accuracy"] <= 1 for s in doc["same_sets"])
    assert [s["set"] for s in doc["end_to_end_no_distill"]] == names
    plain = Bundle.load(tmp_path / "o" / "no-distill").provenance
    assert plain["distill"]["on"] is False
    assert plain["estimator"] == "op-count" and plain["seed"] == 1
    sparsest = doc["sparsest"]["distilled"]
    assert sparsest["set"] == "pp-800mhz"
    gap = 100 * (doc["dense_accuracy"] - sparsest["accuracy"])
    assert sparsest["gap_to_dense_points"] == pytest.approx(gap, abs=1e-3)
    assert doc["meets_target"] == (gap <= doc["target_gap_points"])
    assert doc["uptime"] and len(doc["load_average"]) == 3
    table = markdown_table(doc)
    assert len(table.splitlines()) == 2 + 1 + 4 and "| pp-800mhz | 800 |" in table
    json.dumps(doc, allow_nan=False)  # strict JSON

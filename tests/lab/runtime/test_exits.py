"""Depth and early-exit sets on the runtime (issue 30): the engine against the torch
reference (same logits, same exit taken), the per-exit timing switch, and one set of
export rules for a set's exits in the Python reader and the C loader."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from lab.model.transformer import RT3TransformerLM, confidence
from lab.runtime import engine as E
from lab.runtime.export import ExportError, read_export, write_export
from lab.runtime.pattern_set import PatternSet
from lab.runtime.reconfigurable import ReconfigurableModel, ReconfigurationError

pytestmark = pytest.mark.skipif(E.library() is None, reason=f"no engine: {E.status()}")

EARLY = {"exits": [1, 2], "heads": ["exit_heads.1", "decoder"]}
CONFIG = {"vocab_size": 60, "emb": 16, "ff": 8, "layers": 2, "heads": 2, "dropout": 0.0}


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(3)
    return RT3TransformerLM.from_config({**CONFIG, "exit_heads": [0, 1]}).eval()


@pytest.fixture(scope="module")
def tokens():
    return torch.randint(0, 60, (8, 11), generator=torch.Generator().manual_seed(5))


def _pair(model, sets, active=None):
    """The engine's model and the torch reference's, on the same weights."""
    twin = RT3TransformerLM.from_config(model.config.to_dict()).eval()
    twin.load_state_dict(model.state_dict())
    eng = ReconfigurableModel(model, sets, executor="engine", active=active)
    ref = ReconfigurableModel(twin, sets, executor="torch", active=active)
    return eng, ref


DEPTHS = {
    "d0": ([0], ["exit_heads.0"]),
    "d1-own": ([1], ["exit_heads.1"]),
    "d1-shared": ([1], ["decoder"]),
    "d2": ([2], ["decoder"]),
}


@pytest.mark.parametrize("name", list(DEPTHS))
def test_a_depth_variant_on_the_engine_gives_the_torch_references_logits(model, tokens, name):
    exits, heads = DEPTHS[name]
    eng, ref = _pair(model, [PatternSet(name, {}, {"exits": exits, "heads": heads})], name)
    got, want = eng(tokens), ref(tokens)
    torch.testing.assert_close(got, want, atol=2e-5, rtol=1e-4)
    # and they are the first k layers then that decoder, not the full model
    with torch.no_grad():
        direct = model.head(heads[0])(model.hidden_states(tokens, exits[0])[-1])
    torch.testing.assert_close(got, direct, atol=2e-5, rtol=1e-4)
    if exits[0] < 2:
        assert not torch.allclose(got, model(tokens), atol=1e-3)


def _confidences(model, tokens):
    with torch.no_grad():
        h = model.hidden_states(tokens, 1)[1]
        return [confidence(model.exit_heads["1"](h[b : b + 1])[0]) for b in range(len(h))]


def test_early_exit_stops_where_the_torch_reference_stops_with_its_logits(model, tokens):
    conf = sorted(_confidences(model, tokens))
    threshold = (conf[3] + conf[4]) / 2  # half the rows stop at the first exit
    plan = {"exits": [1, 2], "heads": ["exit_heads.1", "decoder"], "threshold": threshold}
    eng, ref = _pair(model, [PatternSet("ee", {}, plan)], "ee")
    got, want = eng(tokens), ref(tokens)
    assert eng.last_exits == ref.last_exits
    assert sorted(eng.last_exits) == [0, 0, 0, 0, 1, 1, 1, 1]
    torch.testing.assert_close(got, want, atol=2e-5, rtol=1e-4)
    for b, taken in enumerate(eng.last_exits):
        k = plan["exits"][taken]
        with torch.no_grad():
            direct = model.head(plan["heads"][taken])(model.hidden_states(tokens[b : b + 1], k)[-1])
        torch.testing.assert_close(got[b : b + 1], direct, atol=2e-5, rtol=1e-4)


def test_the_engines_confidence_is_the_references(model, tokens):
    plan = {"exits": [1, 2], "heads": ["exit_heads.1", "decoder"], "threshold": 1.0}
    eng, _ = _pair(model, [PatternSet("ee", {}, plan)], "ee")
    want = _confidences(model, tokens)
    for b in range(len(tokens)):
        eng(tokens[b : b + 1])
        taken, conf = eng.engine.last_exit()
        assert taken == 1 and conf == pytest.approx(want[b], rel=1e-5)


def test_force_exit_stops_every_input_at_that_exit_then_lets_the_threshold_decide(model, tokens):
    plan = {"exits": [1, 2], "heads": ["exit_heads.1", "decoder"], "threshold": 0.0}
    eng, ref = _pair(model, [PatternSet("ee", {}, plan)], "ee")
    for rm in (eng, ref):
        rm.force_exit(1)
        rm(tokens)
        assert rm.last_exits == [1] * len(tokens)
        call = rm.serving_call(tokens[:1])
        call()
        assert rm.last_exit() == 1
        rm.force_exit(None)
        rm(tokens)
        assert rm.last_exits == [0] * len(tokens)  # threshold 0: everyone stops first


def test_a_switch_between_depth_and_exit_sets_is_a_store_not_a_reload(model, tokens):
    sets = [
        PatternSet("d1", {}, {"exits": [1], "heads": ["exit_heads.1"]}),
        PatternSet("ee", {}, {**EARLY, "threshold": 1.0}),
    ]
    eng, _ = _pair(model, sets)
    engine = eng.engine
    for name in ("d1", "ee", None, "d1"):
        eng.switch(name)
        eng(tokens)
    assert eng.engine is engine  # one engine, its sets selected by index


def test_a_set_naming_a_head_the_model_lacks_is_refused(model):
    bad = PatternSet("x", {}, {"exits": [1], "heads": ["exit_heads.2"]})
    with pytest.raises(ReconfigurationError, match="heads"):
        ReconfigurableModel(model, [bad], executor="torch")


@pytest.fixture(scope="module")
def export(model, tmp_path_factory):
    sets = [
        PatternSet("d1", {}, {"exits": [1], "heads": ["exit_heads.1"]}),
        PatternSet("ee", {}, {**EARLY, "threshold": 0.5}),
    ]
    out = tmp_path_factory.mktemp("x") / "export"
    return write_export(out, model.config.to_dict(), model.state_dict(), sets)


def test_an_export_with_exits_reads_back_in_both_readers(export):
    ex = read_export(export)
    assert ex.header["model"]["exit_heads"] == [0, 1]
    assert ex.header["sets"][1]["threshold"] == 0.5
    assert ex.arrays["exit_heads.1.pool"].shape == ex.arrays["decoder.pool"].shape
    assert E.Engine(export).set_names == ["d1", "ee"]


def _edit(export, tmp_path, change):
    bad = shutil.copytree(export, tmp_path / "bad")
    header = json.loads((bad / "header.json").read_text())
    change(header)
    (bad / "header.json").write_text(json.dumps(header))
    return bad


def _set(i, **fields):
    def change(h):
        h["sets"][i].update(fields)
        for k in [k for k, v in fields.items() if v is None]:
            del h["sets"][i][k]

    return change


BOTH = {
    "exits decrease": (_set(1, exits=[2, 1]), "exits"),
    "exit past the model's layers": (_set(0, exits=[3], heads=["decoder"]), "exits"),
    "heads of another length": (_set(1, heads=["decoder"]), "exits"),
    "a head at another exit": (_set(0, heads=["exit_heads.0"]), "heads"),
    "an unknown head": (_set(0, heads=["head"]), "heads"),
    "two exits, no threshold": (_set(1, threshold=None), "threshold"),
    "threshold above 1": (_set(1, threshold=1.5), "threshold"),
    "threshold a string": (_set(1, threshold="0.5"), "threshold"),
    "threshold without exits": (_set(0, exits=None, heads=None, threshold=0.5), "exits"),
    "exit heads not increasing": (lambda h: h["model"].update(exit_heads=[1, 0]), "exit_heads"),
    "an exit head past the last layer": (lambda h: h["model"].update(exit_heads=[2]), "exit_heads"),
}


@pytest.mark.parametrize("case", list(BOTH))
def test_both_readers_refuse_the_same_exits(export, tmp_path, case):
    change, says = BOTH[case]
    bad = _edit(export, tmp_path, change)
    with pytest.raises(ExportError, match=says):
        read_export(bad)
    with pytest.raises(E.EngineError, match=says):
        E.Engine(bad)


def test_runner_verify_runs_depth_and_exit_sets_against_their_torch_reference(model, tmp_path):
    """The standalone runner (host, and aarch64 under qemu-aarch64 where installed) runs
    the sets' exits as the engine does: ``runner verify`` compares it with ``run_exits``."""
    import shutil as sh

    from lab.runtime import runner as R
    from lab.runtime.bundle import Bundle

    state = model.state_dict()
    b = Bundle.create("rt3-transformer", model.config.to_dict(), backbone=state, dense=state)
    b.add_set(PatternSet("d1", {}, {"exits": [1], "heads": ["exit_heads.1"]}), 1, 1)
    b.add_set(PatternSet("ee", {}, {**EARLY, "threshold": 0.0}), 1, 1)
    b = Bundle.load(b.save(tmp_path / "b"))
    targets = ["host"] + (["aarch64-linux"] if sh.which("qemu-aarch64") else [])
    for target in targets:
        got = R.verify(b, target, tokens=9)
        assert got["ok"], got
        assert set(got["sets"]) == {"dense", "d1", "ee"}

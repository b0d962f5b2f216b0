"""The native engine (whole model in C, through ctypes) and its export: equal to PyTorch
masked-dense for every set, every switch a table selection, every bad export refused with
the array or header field named, by the Python reader and by the C loader alike."""

import json
import shutil

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab.cli import main
from lab.runtime import engine as E
from lab.runtime.bundle import Bundle
from lab.runtime.export import ExportError, export_bundle, read_export
from lab.runtime.reconfigurable import (
    ReconfigurableModel,
    ReconfigurationError,
    module_from_bundle,
)
from lab.runtime.runner import masked_dense, max_rel_err
from lab.runtime.synthetic import synthetic_bundle

# odd sizes: vocab and in_proj rows not multiples of the block height, ff not one either
SMALL = {"vocab_size": 203, "emb": 40, "ff": 24, "layers": 2, "heads": 4}


def test_the_engine_builds_when_a_compiler_exists():
    """Fails (not skips) where cc exists and the engine does not build."""
    if shutil.which("cc") is None:
        pytest.skip("no C compiler on this machine")
    assert E.library() is not None, E.status()


@pytest.fixture(scope="module", params=[32, 8])
def bundle(request, tmp_path_factory):
    d = tmp_path_factory.mktemp(f"b{request.param}") / "bundle"
    return Bundle.load(synthetic_bundle(d, SMALL, block_rows=request.param, block_cols=4))


@pytest.fixture(scope="module")
def bundle32(tmp_path_factory):
    d = tmp_path_factory.mktemp("b") / "bundle"
    return Bundle.load(synthetic_bundle(d, SMALL, block_rows=32, block_cols=4))


@pytest.fixture(scope="module")
def export(bundle, tmp_path_factory):
    return export_bundle(bundle, tmp_path_factory.mktemp("x") / "export")


def test_every_set_equals_pytorch_masked_dense_within_1e4(bundle, export):
    module = module_from_bundle(bundle)
    eng = E.Engine(export)
    tokens = torch.randint(
        0, SMALL["vocab_size"], (2, 35), generator=torch.Generator().manual_seed(0)
    )
    for name in [None, *bundle.sets]:
        with torch.inference_mode():
            want = masked_dense(module, None if name is None else bundle.sets[name])(tokens)
        eng.select(name)
        err = max_rel_err(eng(tokens).numpy(), want.numpy())
        assert err <= 1e-4, (name, err)
    # the sets differ: the check above can tell one set from another
    eng.select("p20")
    a = eng(tokens)
    eng.select("bp")
    assert max_rel_err(a.numpy(), eng(tokens).numpy()) > 1e-3


def test_every_length_and_sharp_attention_equal_pytorch(bundle32):
    """Lengths 1..40 cover every partial register of the softmax (its masked lanes); query
    weights scaled by 300 make scores hundreds apart, so exp underflows (the engine's vector
    exp must give 0 there, not garbage)."""
    for sharp in (1.0, 300.0):
        module = module_from_bundle(bundle32)
        with torch.no_grad():
            for layer in module.layers:
                layer.self_attn.in_proj.weight[: SMALL["emb"]] *= sharp
        eng = E.Engine.from_model(
            module.config.to_dict(), module.state_dict(), list(bundle32.sets.values())
        )
        gen = torch.Generator().manual_seed(2)
        for n in range(1, 41):
            tokens = torch.randint(0, SMALL["vocab_size"], (1, n), generator=gen)
            for name in (None, "p20"):
                with torch.inference_mode():
                    want = masked_dense(module, None if name is None else bundle32.sets[name])(
                        tokens
                    )
                eng.select(name)
                err = max_rel_err(eng(tokens).numpy(), want.numpy())
                assert err <= 1e-4, (sharp, n, name, err)


def test_engine_executor_runs_the_whole_model_and_switches_by_table(bundle32):
    rm = ReconfigurableModel.from_bundle(bundle32, executor="engine")
    ref = ReconfigurableModel.from_bundle(bundle32, executor="torch")
    tokens = torch.randint(
        0, SMALL["vocab_size"], (3, 20), generator=torch.Generator().manual_seed(1)
    )
    for name in bundle32.sets:
        rm.switch(name)
        ref.switch(name)
        assert rm.engine.active == name
        assert max_rel_err(rm(tokens).numpy(), ref(tokens).numpy()) <= 1e-4
        assert set(rm.form_kinds()[name].values()) == {"engine"}
    mem = rm.memory()
    # weights once (the engine's copy of the backbone), every set its index tables only
    assert mem.engine_bytes >= mem.pruned_dense_bytes
    assert all(v < mem.engine_bytes / 4 for v in mem.set_bytes.values())
    assert mem.sets_total_bytes < mem.pruned_dense_bytes


def test_auto_runs_the_engine_wherever_it_builds_and_stays_exact(bundle32):
    """``auto`` picks the engine wherever it builds; where there is a C compiler it must
    build (so a broken build fails here instead of passing on the torch fallback)."""
    import os

    rm = ReconfigurableModel.from_bundle(bundle32, executor="auto", active="p50")
    if shutil.which(os.environ.get("CC") or "cc"):
        assert E.library() is not None, "a C compiler is here but the engine did not build"
    if E.library() is None:
        assert rm.executor == "torch" and "native engine unavailable" in rm.fallback_reason
    else:
        assert rm.executor == "engine" and rm.fallback_reason is None
        assert rm.forms == {n: {} for n in bundle32.sets} and rm.pools == {}  # no torch forms
    tokens = torch.randint(0, SMALL["vocab_size"], (1, 35))
    want = masked_dense(module_from_bundle(bundle32), bundle32.sets["p50"])(tokens)
    assert max_rel_err(rm(tokens).numpy(), want.detach().numpy()) <= 1e-4


def test_engine_executor_refuses_a_model_it_cannot_run():
    net = torch.nn.Sequential(torch.nn.Linear(4, 4))
    with pytest.raises(ReconfigurationError, match="RT3TransformerLM"):
        ReconfigurableModel(net, [], executor="engine")


def test_a_token_outside_the_vocabulary_is_refused(export):
    eng = E.Engine(export)
    with pytest.raises(E.EngineError, match="vocabulary"):
        eng.logits(np.array([0, SMALL["vocab_size"]]))


def test_a_bound_call_runs_the_active_set_on_its_arrays_until_the_engine_closes(export):
    eng = E.Engine(export)
    tokens = np.arange(35, dtype=np.int64) * 5 % SMALL["vocab_size"]
    out = np.zeros((35, SMALL["vocab_size"]), dtype=np.float32)
    run = eng.bind(tokens, out)
    eng.select("p20")
    run()
    assert np.array_equal(out, eng.logits(tokens))
    eng.select(None)  # the set active at the call, not at bind
    run()
    assert np.array_equal(out, eng.logits(tokens))
    tokens[:] = tokens[::-1]  # new tokens written in place
    run()
    assert np.array_equal(out, eng.logits(tokens))
    with pytest.raises(ValueError, match="cannot resize"):
        out.resize((1, 1))  # the bound call holds the array: numpy refuses
    tokens[3] = SMALL["vocab_size"]
    with pytest.raises(E.EngineError, match="vocabulary"):
        run()
    with pytest.raises(E.EngineError, match="int64"):
        eng.bind(tokens.astype(np.int32), out)
    eng.close()
    with pytest.raises(E.EngineError, match="closed"):
        run()
    with pytest.raises(E.EngineError, match="closed"):  # not a NULL handle into C
        eng.forward_into(tokens, out)
    with pytest.raises(E.EngineError, match="closed"):
        eng(torch.zeros(1, 3, dtype=torch.int64))


def test_the_torch_call_takes_any_integer_layout_and_an_empty_batch(export):
    eng = E.Engine(export)
    eng.select("p20")
    tokens = torch.arange(70).reshape(7, 10).T % SMALL["vocab_size"]  # (10, 7), strided
    got = eng(tokens.to(torch.int32))
    assert got.shape == (10, 7, SMALL["vocab_size"])
    for b in range(10):
        assert np.array_equal(got[b].numpy(), eng.logits(tokens[b].numpy()))
    assert eng(torch.zeros(0, 5, dtype=torch.int64)).shape == (0, 5, SMALL["vocab_size"])


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def _entry(path, name):
    header = json.loads((path / "header.json").read_text())
    return header, next(a for a in header["arrays"] if a["name"] == name)


def test_a_truncated_export_is_refused_naming_the_array(export, tmp_path):
    bad = _copy(export, tmp_path / "bad")
    _, last = _entry(bad, json.loads((bad / "header.json").read_text())["arrays"][-1]["name"])
    data = (bad / "arrays.bin").read_bytes()
    (bad / "arrays.bin").write_bytes(data[: last["offset"] + 4])
    with pytest.raises(ExportError, match=f"array '{last['name']}'.*truncated"):
        read_export(bad)
    with pytest.raises(E.EngineError, match=f"array '{last['name']}'.*truncated"):
        E.Engine(bad)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(which=st.integers(0, 10_000), byte=st.integers(0, 10_000))
def test_a_tampered_byte_is_refused_naming_its_array(export, tmp_path_factory, which, byte):
    bad = _copy(export, tmp_path_factory.mktemp("t") / "bad")
    header = json.loads((bad / "header.json").read_text())
    entries = [a for a in header["arrays"] if a["nbytes"]]
    a = entries[which % len(entries)]
    data = bytearray((bad / "arrays.bin").read_bytes())
    data[a["offset"] + byte % a["nbytes"]] ^= 0x01
    (bad / "arrays.bin").write_bytes(bytes(data))
    with pytest.raises(ExportError, match=f"array '{a['name']}'.*sha256"):
        read_export(bad)
    with pytest.raises(E.EngineError, match=f"array '{a['name']}'.*sha256"):
        E.Engine(bad)


def test_a_consistent_but_out_of_range_index_is_refused(export, tmp_path):
    """Checksums recomputed by an attacker do not get an index past its layer."""
    import hashlib

    bad = _copy(export, tmp_path / "bad")
    header = json.loads((bad / "header.json").read_text())
    a = next(a for a in header["arrays"] if a["name"].endswith("decoder.cols") and a["nbytes"])
    data = bytearray((bad / "arrays.bin").read_bytes())
    data[a["offset"] : a["offset"] + 4] = np.int32(10_000).tobytes()
    a["sha256"] = hashlib.sha256(data[a["offset"] : a["offset"] + a["nbytes"]]).hexdigest()
    (bad / "arrays.bin").write_bytes(bytes(data))
    (bad / "header.json").write_text(json.dumps(header))
    with pytest.raises(ExportError, match=f"array '{a['name']}'.*out of range"):
        read_export(bad)
    with pytest.raises(E.EngineError, match=f"array '{a['name']}'.*out of range"):
        E.Engine(bad)


@pytest.mark.parametrize(
    ("field", "value"),
    [("format", "something-else"), ("version", 2), ("data", "../etc/passwd")],
)
def test_a_foreign_header_is_refused_naming_the_field(export, tmp_path, field, value):
    bad = _copy(export, tmp_path / "bad")
    header = json.loads((bad / "header.json").read_text())
    header[field] = value
    (bad / "header.json").write_text(json.dumps(header))
    with pytest.raises(ExportError, match=f"header field '{field}'"):
        read_export(bad)
    with pytest.raises(E.EngineError, match=f"header field '{field}'"):
        E.Engine(bad)


def test_export_cli_writes_once_and_refuses_to_overwrite(bundle32, tmp_path, capsys):
    out = tmp_path / "x"
    with pytest.raises(SystemExit) as exc:
        main(["export", "--bundle", str(bundle32.path), "--out", str(out), "--json"])
    assert exc.value.code == 0
    assert json.loads(capsys.readouterr().out)["sets"] == list(bundle32.sets)
    before = (out / "arrays.bin").read_bytes()
    with pytest.raises(SystemExit) as exc:
        main(["export", "--bundle", str(bundle32.path), "--out", str(out)])
    assert exc.value.code == 2
    assert "exists" in capsys.readouterr().err
    assert (out / "arrays.bin").read_bytes() == before

"""The standalone runner: built for the host and cross-built for aarch64 with ziglang, run
under qemu-aarch64 (Debian's qemu-user; `make test` installs it), equal to PyTorch
masked-dense for every set; a bad export or a missing ziglang is one line and exit 2."""

import json
import shutil

import numpy as np
import pytest
import torch

from lab.bundle import Bundle
from lab.cli import main
from lab.runtime import runner as R
from lab.runtime.export import export_bundle
from lab.runtime.synthetic import synthetic_bundle

SMALL = {"vocab_size": 150, "emb": 32, "ff": 24, "layers": 1, "heads": 2}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    d = tmp_path_factory.mktemp("b") / "bundle"
    return Bundle.load(synthetic_bundle(d, SMALL, block_cols=4))


@pytest.fixture(scope="module")
def export(bundle, tmp_path_factory):
    return export_bundle(bundle, tmp_path_factory.mktemp("x") / "export")


def run(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def test_host_runner_prints_latencies_logits_and_switch_time(bundle, export, tmp_path):
    binary = R.build_runner("host", tmp_path / "runner")
    out = R.run_runner(binary, export, "p30", runs=4, warmup=1, switch_to="bp")
    assert len(out["runs_ms"]) == 4 and out["median_ms"] == pytest.approx(
        R.median(out["runs_ms"]), abs=1e-5
    )
    assert out["switch_to"] == "bp" and out["switch_ms"] >= 0
    assert len(out["first_logits"]) == 8
    ids = list(range(0, 140, 7))
    dump = tmp_path / "l.f32"
    R.run_runner(binary, export, "p30", 1, 0, None, ids, dump)
    from lab.runtime.reconfigurable import module_from_bundle

    with torch.inference_mode():
        want = R.masked_dense(module_from_bundle(bundle), bundle.sets["p30"])(torch.tensor([ids]))
    got = np.fromfile(dump, dtype="<f4").reshape(want.shape[1:])
    assert R.max_rel_err(got, want[0].numpy()) <= 1e-4


def test_runner_refuses_a_corrupt_export_naming_the_array(export, tmp_path):
    binary = R.build_runner("host", tmp_path / "runner")
    bad = tmp_path / "bad"
    shutil.copytree(export, bad)
    header = json.loads((bad / "header.json").read_text())
    a = next(a for a in header["arrays"] if a["name"] == "decoder.pool")
    data = bytearray((bad / "arrays.bin").read_bytes())
    data[a["offset"] + 5] ^= 0xFF
    (bad / "arrays.bin").write_bytes(bytes(data))
    with pytest.raises(R.RunnerError, match=r"array 'decoder\.pool'.*sha256"):
        R.run_runner(binary, bad, "bp")
    (bad / "header.json").write_text(json.dumps({**header, "format": "other"}))
    with pytest.raises(R.RunnerError, match="header field 'format'"):
        R.run_runner(binary, bad, "bp")
    with pytest.raises(R.RunnerError, match="--set"):
        R.run_runner(binary, export, "no-such-set")


def test_runner_build_without_ziglang_says_how_to_get_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(R, "zig_cc", lambda: None)
    code, _, err = run(
        ["runner", "build", "--target", "aarch64-linux", "--out", str(tmp_path / "r")], capsys
    )
    assert code == 2
    assert "pip install ziglang" in err and len(err.strip().splitlines()) == 1


def test_aarch64_runner_under_qemu_equals_pytorch_for_every_set(bundle, capsys):
    """Fails, not skips, where qemu-aarch64 or ziglang is missing (`make test` installs
    both)."""
    assert shutil.which("qemu-aarch64"), "qemu-aarch64 missing: apt-get install qemu-user"
    assert R.zig_cc() is not None, R.ZIG_HINT
    code, out, err = run(
        ["runner", "verify", "--bundle", str(bundle.path), "--target", "aarch64-linux", "--json"],
        capsys,
    )
    assert code == 0, err
    result = json.loads(out)
    assert set(result["sets"]) == {"dense", *bundle.sets}
    assert all(e <= 1e-4 for e in result["sets"].values()), result

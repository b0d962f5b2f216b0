"""The standalone runner: built for the host and cross-built for aarch64 with ziglang, run
under qemu-aarch64 (Debian's qemu-user; `make test` installs it), equal to PyTorch
masked-dense for every set; a bad export or a missing ziglang is one line and exit 2."""

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from lab.cli import main
from lab.runtime import runner as R
from lab.runtime.bundle import Bundle
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


@pytest.mark.parametrize(
    ("ziglang", "says"),
    [
        ("raise ModuleNotFoundError(\"No module named 'ziglang'\")", "No module named"),
        ("", "failed"),  # a package whose `python -m ziglang version` exits 1
    ],
    ids=["not-importable", "zig-does-not-run"],
)
def test_runner_build_without_a_usable_ziglang_says_how_to_get_it(tmp_path, ziglang, says):
    """A ziglang that cannot run, put first on PYTHONPATH (no mocks): one line, exit 2."""
    pkg = tmp_path / "shadow" / "ziglang"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(ziglang + "\n")
    (pkg / "__main__.py").write_text("import sys\nsys.exit(1)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(tmp_path / "shadow"), *filter(None, [os.environ.get("PYTHONPATH")])])}  # fmt: skip
    out = tmp_path / "r"
    done = subprocess.run(
        [sys.executable, "-m", "lab", "runner", "build", "--target", "aarch64-linux", "--out",
         str(out)], capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install ziglang" in lines[0] and says in lines[0], lines
    assert not out.exists()


@pytest.fixture(scope="module")
def host_runner(tmp_path_factory):
    return R.build_runner("host", tmp_path_factory.mktemp("r") / "runner")


def _header(d):
    return json.loads((d / "header.json").read_text())


def _set_header(d, h):
    (d / "header.json").write_text(json.dumps(h))


def _edit_array(d, name, change):
    """Rewrite array ``name`` (and its checksum, so only ``change`` is wrong)."""
    import hashlib

    h = _header(d)
    a = next(a for a in h["arrays"] if a["name"] == name)
    data = bytearray((d / "arrays.bin").read_bytes())
    dt = np.dtype("<f4" if a["dtype"] == "float32" else "<i4")
    v = np.frombuffer(bytes(data[a["offset"] : a["offset"] + a["nbytes"]]), dt).copy()
    change(v)
    data[a["offset"] : a["offset"] + a["nbytes"]] = v.tobytes()
    a["sha256"] = hashlib.sha256(v.tobytes()).hexdigest()
    (d / "arrays.bin").write_bytes(bytes(data))
    _set_header(d, h)


def _truncate(d):
    data = (d / "arrays.bin").read_bytes()
    (d / "arrays.bin").write_bytes(data[: len(data) // 2])


def _with(field, value):
    def edit(d):
        _set_header(d, {**_header(d), field: value})

    return edit


def _array_field(name, field, value):
    def edit(d):
        h = _header(d)
        next(a for a in h["arrays"] if a["name"] == name)[field] = value
        _set_header(d, h)

    return edit


def _drop(name):
    def edit(d):
        h = _header(d)
        _set_header(d, {**h, "arrays": [a for a in h["arrays"] if a["name"] != name]})

    return edit


def _cols_out_of_range(v):
    v[0] = 10**6


BAD_EXPORTS = {
    "foreign format": (
        lambda d: _set_header(d, {"format": "gguf", "version": 3}),
        r"header field 'format': expected \"rt3lab-export\"",
    ),
    "newer version": (_with("version", 2), "header field 'version'"),
    "header not JSON": (lambda d: (d / "header.json").write_text("{"), "header.json: not a JSON"),
    "no header": (lambda d: (d / "header.json").unlink(), "header.json: cannot read"),
    "truncated data": (_truncate, r"array '[\w.]+': lies outside the data file"),
    "offset past the end": (
        _array_field("decoder.bias", "offset", 1 << 40),
        "array 'decoder.bias': lies outside the data file",
    ),
    "wrong dtype": (
        _array_field("embedding.weight", "dtype", "float64"),
        "array 'embedding.weight': dtype",
    ),
    "shape and size disagree": (
        _array_field("embedding.weight", "shape", [7, 7]),
        "array 'embedding.weight': nbytes does not match its shape",
    ),
    "array missing": (_drop("decoder.bias"), "array 'decoder.bias': missing"),
    "index out of range": (
        lambda d: _edit_array(d, "sets.bp.decoder.cols", _cols_out_of_range),
        "array 'sets.bp.decoder.cols': a column index is out of range",
    ),
}


@pytest.mark.parametrize("case", list(BAD_EXPORTS))
def test_runner_refuses_a_foreign_or_corrupt_export_in_one_line(
    case, export, host_runner, tmp_path
):
    """Exit 2 and one line on stderr naming the header field or the array, nothing on
    stdout."""
    edit, says = BAD_EXPORTS[case]
    bad = tmp_path / "bad"
    shutil.copytree(export, bad)
    edit(bad)
    done = subprocess.run(
        [str(host_runner), str(bad), "--set", "bp", "--runs", "1"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rt3lab-runner: error: "), lines
    assert re.search(says, lines[0]), lines[0]


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

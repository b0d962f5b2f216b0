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


# ---- the data file's checksums, verified once per export (engine.c's verified stamp)
STAMP_MIN_AGE_S = 2  # engine.c: a data file's ctime this old before it is stamped


@pytest.fixture(scope="module")
def aged(bundle, tmp_path_factory):
    """Exports written more than STAMP_MIN_AGE_S ago (so the runner stamps them), one per
    test that changes its own."""
    import time

    root = tmp_path_factory.mktemp("aged")
    names = ["host-tamper", "aarch64-linux-tamper", "forged", "engine"]
    out = {n: export_bundle(bundle, root / n) for n in names}
    time.sleep(STAMP_MIN_AGE_S + 0.2)
    return out


@pytest.fixture(scope="module")
def runners(tmp_path_factory):
    """The runner per target, built once: the host's, and aarch64's (under qemu-aarch64)."""
    built = {}

    def get(target):
        if target not in built:
            if target != "host":
                assert shutil.which("qemu-aarch64"), (
                    "qemu-aarch64 missing: apt-get install qemu-user"
                )
                assert R.zig_cc() is not None, R.ZIG_HINT
            built[target] = R.build_runner(target, tmp_path_factory.mktemp(target) / "runner")
        return built[target]

    return get


def _flip_keeping_size_and_mtime(path, offset):
    """Change one byte in place, then put the file's mtime (and atime) back."""
    st = os.stat(path)
    with open(path, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([byte[0] ^ 0xFF]))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_size, after.st_mtime_ns) == (st.st_size, st.st_mtime_ns)


def _pool_offset(d):
    """The byte holding the sign of the decoder's largest weight (the backbone is pruned:
    many weights are zero, and a flipped bit of a zero barely moves the logits)."""
    a = next(a for a in _header(d)["arrays"] if a["name"] == "decoder.pool")
    data = (d / "arrays.bin").read_bytes()[a["offset"] : a["offset"] + a["nbytes"]]
    return a["offset"] + 4 * int(np.abs(np.frombuffer(data, "<f4")).argmax()) + 3


@pytest.mark.parametrize("target", ["host", "aarch64-linux"])
def test_the_runner_verifies_once_and_still_refuses_bytes_changed_under_the_stamp(
    target, aged, runners
):
    """The first run of an export old enough hashes it and stamps it; later runs trust the
    stamp. Bytes changed in place with size and mtime put back (os.utime) change ctime: the
    runner hashes again and refuses, naming the array."""
    from lab.runtime.export import VERIFIED

    d = aged[f"{target}-tamper"]
    prefix = R.launcher(target)
    binary = runners(target)
    first = R.run_runner(binary, d, "bp", runs=1, warmup=0, prefix=prefix)
    stamp = (d / VERIFIED).read_text()
    st = os.stat(d / "arrays.bin")
    assert f"inode {st.st_ino} " in stamp and f"size {st.st_size} " in stamp
    again = R.run_runner(binary, d, "bp", runs=1, warmup=0, prefix=prefix)
    assert again["checksum"] == first["checksum"] and (d / VERIFIED).read_text() == stamp
    _flip_keeping_size_and_mtime(d / "arrays.bin", _pool_offset(d))
    with pytest.raises(R.RunnerError, match=r"array 'decoder\.pool'.*sha256"):
        R.run_runner(binary, d, "bp", runs=1, warmup=0, prefix=prefix)
    assert (d / VERIFIED).read_text() == stamp  # a refused export is not stamped


def test_a_stamp_naming_the_file_as_it_is_skips_the_hashing(aged, host_runner):
    """What the stamp saves, shown by a stamp rewritten for changed bytes (what no user code
    can produce without writing the stamp itself): the runner trusts it and runs them (dense:
    every weight); a header one byte off the one stamped gets the bytes hashed, and refused."""
    from lab.runtime.export import VERIFIED

    d = aged["forged"]
    first = R.run_runner(host_runner, d, "dense", runs=1, warmup=0)
    stamp = (d / VERIFIED).read_text()
    _flip_keeping_size_and_mtime(d / "arrays.bin", _pool_offset(d))
    ns = os.stat(d / "arrays.bin").st_ctime_ns
    forged = re.sub(r"ctime \d+\.\d+", f"ctime {ns // 10**9}.{ns % 10**9:09d}", stamp)
    assert forged != stamp
    (d / VERIFIED).write_text(forged)
    trusted = R.run_runner(host_runner, d, "dense", runs=1, warmup=0)
    assert trusted["checksum"] != first["checksum"]  # the changed weight ran, unhashed
    (d / "header.json").write_text((d / "header.json").read_text() + " ")
    with pytest.raises(R.RunnerError, match=r"array 'decoder\.pool'.*sha256"):
        R.run_runner(host_runner, d, "dense", runs=1, warmup=0)


def test_the_ctypes_engine_shares_the_stamp_and_its_refusals(aged):
    from lab.runtime import engine as E
    from lab.runtime.export import VERIFIED

    if E.library() is None:
        pytest.skip(f"native engine unavailable: {E.status()}")
    d = aged["engine"]
    E.Engine(d).close()
    assert (d / VERIFIED).is_file()
    _flip_keeping_size_and_mtime(d / "arrays.bin", _pool_offset(d))
    with pytest.raises(E.EngineError, match=r"array 'decoder\.pool'.*sha256"):
        E.Engine(d)


def test_a_fresh_export_is_hashed_but_not_stamped(bundle, host_runner, tmp_path):
    """Within STAMP_MIN_AGE_S of its last change the data file's ctime could still be
    shared by a later write in the same clock tick: no stamp yet."""
    import time

    from lab.runtime.export import VERIFIED

    t0 = time.time()
    d = export_bundle(bundle, tmp_path / "export")
    R.run_runner(host_runner, d, "bp", runs=1, warmup=0)
    if time.time() - t0 < STAMP_MIN_AGE_S - 0.5:  # a loaded machine may take longer
        assert not (d / VERIFIED).exists()

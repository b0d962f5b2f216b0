"""Issue 31 for the engine's export and the runner, Python side: one set of rules for an
export (the Python reader refuses what the C loader refuses), special files refused, model
sizes bounded before anything is built, ``--out`` refused in one line, ``--json`` strict.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_runner import rt3lab

from lab.runtime import engine as E
from lab.runtime.export import ExportError, export_bundle, read_export
from lab.runtime.synthetic import synthetic_bundle

ROOT = Path(__file__).resolve().parents[3]
SMALL = {"vocab_size": 40, "emb": 8, "ff": 8, "layers": 1, "heads": 2}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return synthetic_bundle(tmp_path_factory.mktemp("b") / "bundle", config=SMALL)


@pytest.fixture(scope="module")
def export(bundle, tmp_path_factory):
    from lab.runtime.bundle import Bundle

    return export_bundle(Bundle.load(bundle), tmp_path_factory.mktemp("x") / "export")


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def _header_text(export: Path, tmp_path: Path, edit) -> Path:
    bad = shutil.copytree(export, tmp_path / "bad")
    (bad / "header.json").write_bytes(edit((export / "header.json").read_bytes()))
    return bad


def _nest(text: bytes, depth: int) -> bytes:
    return text.rstrip()[:-1] + b', "x": ' + b"[" * depth + b"]" * depth + b"}"


# Header edits both readers refuse: the C loader's rules (engine.c) are the Python reader's.
BOTH = {
    "byte-order mark": (lambda t: b"\xef\xbb\xbf" + t, "byte-order mark"),
    "version true": (
        lambda t: t.replace(b'"version": 1', b'"version": true'),
        "header field 'version'",
    ),
    "NaN": (lambda t: t.replace(b'"version": 1', b'"version": NaN'), "NaN is not JSON"),
    "33 deep": (lambda t: _nest(t, 32), "nested deeper than 32 levels"),
    "set name with a slash": (
        lambda t: t.replace(b'"name": "bp"', b'"name": "b/p"', 1),
        "header field 'sets'",
    ),
}


@pytest.mark.parametrize("case", list(BOTH))
def test_the_python_reader_refuses_what_the_engine_refuses(export, tmp_path, case):
    edit, says = BOTH[case]
    bad = _header_text(export, tmp_path, edit)
    with pytest.raises(ExportError, match=says):
        read_export(bad)
    if E.library() is not None:
        with pytest.raises(E.EngineError):
            E.Engine(bad)


def test_32_deep_is_within_both_readers_bounds(export, tmp_path):
    ok = _header_text(export, tmp_path, lambda t: _nest(t, 31))
    assert read_export(ok).set_names
    if E.library() is not None:
        assert E.Engine(ok).set_names


def test_a_key_given_twice_is_refused_not_read_last(export, tmp_path):
    """Python kept the last ``version``, the engine reads the first: refused here."""
    bad = _header_text(export, tmp_path, lambda t: t.replace(b"{", b'{"version": 2,', 1))
    with pytest.raises(ExportError, match="key 'version' appears twice in one object"):
        read_export(bad)


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


def run_limited(code: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """``python -c CODE`` with a time and a memory limit: a regression that reads a FIFO or
    /dev/zero fails the test, rather than hang it or fill the machine's memory."""
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
        cwd=ROOT, preexec_fn=_limited, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip


@pytest.mark.parametrize("name", ["header.json", "arrays.bin"])
@pytest.mark.parametrize("kind", ["fifo", "devzero"])
def test_special_files_in_an_export_are_refused(export, tmp_path, name, kind):
    bad = shutil.copytree(export, tmp_path / "bad")
    (bad / name).unlink()
    if kind == "fifo":
        os.mkfifo(bad / name)
    else:
        (bad / name).symlink_to("/dev/zero")
    what = "a named pipe (FIFO)" if kind == "fifo" else "a character device"
    code = (
        "from lab.runtime.export import ExportError, read_export\n"
        f"try:\n    read_export({str(bad)!r})\nexcept ExportError as exc:\n    print(exc)"
    )
    done = run_limited(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{bad / name}: is {what}, expected a regular file\n"


def test_a_million_layers_are_refused_before_a_layer_is_built(bundle, tmp_path):
    """``"layers": 1000000`` grew ``export`` past 11 GB building layers on the meta device."""
    root = shutil.copytree(bundle, tmp_path / "b")
    doc = json.loads((root / "bundle.json").read_text())
    doc["model"]["config"]["layers"] = 1_000_000
    (root / "bundle.json").write_text(json.dumps(doc))
    args = ["export", "--bundle", str(root), "--out", str(tmp_path / "x")]
    done = subprocess.run(
        [sys.executable, "-m", "lab", *args],
        capture_output=True, text=True, timeout=120, cwd=ROOT, preexec_fn=_limited,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert one_line(done.stderr) == (
        f"rt3lab: error: {root / 'bundle.json'}: field model.config.layers is 1000000; "
        "rt3lab builds at most 256"
    )


@pytest.mark.parametrize("where", ["under a file", "a dangling link"])
@pytest.mark.parametrize("command", ["export", "runner build"])
def test_out_under_a_file_or_on_a_dangling_link_is_one_line_exit_2(
    bundle, tmp_path, where, command
):
    """Both were FileExistsError, exit 1; ``runner build`` built through the link."""
    (tmp_path / "file").write_text("")
    if where == "under a file":
        out, says = tmp_path / "file" / "x", f"{tmp_path / 'file'} is not a directory"
    else:
        out, says = tmp_path / "link", "is a symbolic link; choose a new path"
        out.symlink_to(tmp_path / "target")
    args = ["export", "--bundle", str(bundle)] if command == "export" else ["runner", "build"]
    r = rt3lab(*args, "--out", str(out))
    assert r.code == 2, r.stderr
    line = one_line(r.stderr)
    assert line.startswith(f"rt3lab: error: --out {out}: ") and says in line
    assert not (tmp_path / "target").exists()


def test_runner_verify_json_stays_json_when_an_error_is_nan(bundle, tmp_path):
    """NaN weights make NaN logits: the runner's own output (C's ``nan``) was an error
    ("Expecting value", exit 2), and ``--json`` would have printed ``NaN``, not JSON."""
    from lab.runtime.bundle import Bundle

    if E.library() is None:
        pytest.skip("no C compiler: the runner cannot be built")
    b = Bundle.load(bundle)
    for state in (b.backbone, b.dense):
        state["decoder.bias"][0] = float("nan")
    b.save(tmp_path / "nan")
    args = ["runner", "verify", "--bundle", str(tmp_path / "nan"), "--target", "host", "--json"]
    with pytest.warns(UserWarning, match=r"^--json: sets\.dense \(nan\), .* printed as null"):
        r = rt3lab(*args)
    assert r.code == 1, r.stderr  # not equal within 1e-4
    result = json.loads(r.stdout, parse_constant=lambda c: pytest.fail(f"{c} in --json"))
    assert result["ok"] is False and set(result["sets"].values()) == {None}

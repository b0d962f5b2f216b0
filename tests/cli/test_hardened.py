"""Issue 31: every new surface hardened (contracts, simulator, reports, device profiles).

Each test drives the real ``rt3lab``: in-process through ``cli_runner``, or as a process
where the process matters (a named pipe that would block it, ``/dev/zero`` that would fill
its memory: there it runs under a time limit and a 4 GiB address-space limit, so a
regression fails the test instead of hanging it or the machine).
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
import yaml
from cli_runner import rt3lab

ROOT = Path(__file__).resolve().parents[2]
SMALL = {"vocab_size": 40, "emb": 8, "ff": 8, "layers": 1, "heads": 2}


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


def run_limited(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """``rt3lab ARGS`` as a process with a time and memory limit."""
    return subprocess.run(
        [sys.executable, "-m", "lab", *args],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT, preexec_fn=_limited,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    from lab.runtime.synthetic import synthetic_bundle

    return synthetic_bundle(tmp_path_factory.mktemp("b") / "bundle", config=SMALL)


def _special(path: Path, kind: str) -> Path:
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    return path


# --- 1. special files and sizes -------------------------------------------------------


@pytest.mark.parametrize("kind", ["fifo", "devzero"])
@pytest.mark.parametrize("reader", ["sweep", "profile", "trace", "bundle"])
def test_a_special_file_is_refused_in_one_line_naming_it(tmp_path, bundle, reader, kind):
    """A FIFO blocked these readers forever; /dev/zero grew them past the memory limit."""
    if reader == "sweep":
        path = _special(tmp_path / "s.yaml", kind)
        args = ["sweep", str(path), "--out", str(tmp_path / "o")]
    elif reader == "profile":
        path = _special(tmp_path / "p.yaml", kind)
        args = ["simulate", "--profile", str(path)]
    elif reader == "trace":
        path = _special(tmp_path / "t.csv", kind)
        args = ["simulate", "--workload", f"trace:{path}", "--capacity-mah", "0.3"]
    else:
        root = shutil.copytree(bundle, tmp_path / "b")
        path = root / "bundle.json"
        path.unlink()
        _special(path, kind)
        args = ["simulate", "--bundle", str(root)]
    done = run_limited(*args)
    assert done.returncode == 2, done.stderr
    what = "a named pipe (FIFO)" if kind == "fifo" else "a character device"
    assert one_line(done.stderr) == f"rt3lab: error: {path}: is {what}, expected a regular file"


def test_a_sweep_file_over_its_size_bound_is_refused_before_parsing(tmp_path):
    path = tmp_path / "s.yaml"
    padding = ("# " + "x" * 97 + "\n") * ((5 << 20) // 100)
    path.write_text(padding + "profiles: [rt3-paper]\npolicies: [none-such]\n")
    r = rt3lab("sweep", str(path), "--out", str(tmp_path / "o"))
    assert r.code == 2
    assert one_line(r.stderr) == (
        f"rt3lab: error: {path}: over 4 MiB, larger than any such file rt3lab reads"
    )


NOWHERE = "tcp://127.0.0.1:9"  # a sweep that got past validation would fail here, not run


@pytest.mark.parametrize(
    ("axes", "says"),
    [
        (
            {"capacities_mah": [0.2 + i / 1000 for i in range(400)], "seeds": list(range(300))},
            "capacities_mah: 400 values make 120,000 cells with the other axes, over the "
            "100,000 a sweep may hold",
        ),
        ({"seeds": [0, -1]}, "seeds[1]: expected an integer from 0 to 2**63 - 1, got -1"),
    ],
)
def test_a_sweep_too_large_or_with_a_bad_seed_is_refused_naming_the_field(tmp_path, axes, says):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"profiles": ["rt3-paper"], "policies": ["rt3"], **axes}))
    r = rt3lab("sweep", str(path), "--out", str(tmp_path / "o"), "--scheduler", NOWHERE)
    assert r.code == 2, r.stderr
    assert one_line(r.stderr).startswith(f"rt3lab: error: {path}: {says}")


def test_ten_million_seeds_are_refused_before_they_are_validated():
    from simulator.sweep import SweepConfigError, validate_config

    data = {"profiles": ["rt3-paper"], "policies": ["rt3"], "seeds": list(range(10**7))}
    with pytest.raises(SweepConfigError, match=r"s\.yaml: seeds: 10,000,000 values, over the "):
        validate_config(data, "s.yaml")


# --- 2. overwrites --------------------------------------------------------------------


def _planted_link(path: Path, target: Path) -> None:
    path.unlink()
    path.symlink_to(target)


@pytest.mark.parametrize("command", ["simulate", "report"])
def test_out_never_replaces_a_result_unasked_nor_follows_a_link(tmp_path, command):
    """Both replaced the first result; both wrote through a link to its target."""
    run, rep = tmp_path / "run", tmp_path / "rep"
    simulate = ["simulate", "--capacity-mah", "0.3", "--out", str(run)]
    args = simulate if command == "simulate" else ["report", str(run), "--out", str(rep)]
    result = run / "results.json" if command == "simulate" else rep / "report.html"
    assert rt3lab(*simulate).code == 0
    if command == "report":
        assert rt3lab(*args).code == 0
    before = result.read_bytes()
    again = rt3lab(*args)
    assert again.code == 2
    assert one_line(again.stderr) == (
        f"rt3lab: error: {result}: already exists; pass --overwrite to replace it"
    )
    assert result.read_bytes() == before
    # --overwrite replaces it; a link planted at its name is replaced, its target untouched
    outside = tmp_path / "outside"
    outside.write_text("mine")
    planted = [result, run / "events" / "rt3.csv" if command == "simulate" else rep / "report.md"]
    for path in planted:
        _planted_link(path, outside)
    done = rt3lab(*args, "--overwrite")
    assert done.code == 0, done.stderr
    assert outside.read_text() == "mine"
    assert not any(p.is_symlink() for p in planted) and result.read_bytes() != b"mine"


def test_a_report_figures_directory_leading_outside_is_refused(tmp_path):
    run, rep, elsewhere = tmp_path / "run", tmp_path / "rep", tmp_path / "elsewhere"
    assert rt3lab("simulate", "--capacity-mah", "0.3", "--out", str(run)).code == 0
    elsewhere.mkdir()
    rep.mkdir()
    (rep / "figures").symlink_to(elsewhere)
    linked = rt3lab("report", str(run), "--out", str(rep))
    assert linked.code == 2
    assert one_line(linked.stderr) == (
        f"rt3lab: error: {rep / 'figures'}: is a symbolic link; rt3lab writes its output only "
        f"inside {rep}"
    )
    assert not any(elsewhere.iterdir())


# --- 3. exit classes ------------------------------------------------------------------


@pytest.mark.parametrize("number", [str(10**400), "1e400"])
@pytest.mark.parametrize("command", ["simulate", "export"])
def test_an_out_of_range_number_in_a_bundle_is_one_line_exit_2(tmp_path, bundle, number, command):
    """``10**400`` raised OverflowError (exit 1) in the simulator's bundle reader."""
    root = shutil.copytree(bundle, tmp_path / "b")
    text = (root / "bundle.json").read_text()
    mults = json.loads(text)["sets"][0]["nonzero_mults"]
    (root / "bundle.json").write_text(
        text.replace(f'"nonzero_mults": {mults}', f'"nonzero_mults": {number}', 1)
    )
    args = ["--bundle", str(root)] + (["--out", str(tmp_path / "x")] if command == "export" else [])
    r = rt3lab(command, *args)
    assert r.code == 2, r.stderr
    line = one_line(r.stderr)
    assert str(root / "bundle.json") in line and number[:10] in line


DEEP = 100_000


@pytest.mark.parametrize("where", ["sweep", "profile", "profiles validate", "bundle"])
def test_deeply_nested_input_is_one_line_exit_2(tmp_path, bundle, where):
    """PyYAML composes nodes recursively: these ended in a RecursionError (exit 1)."""
    nest = "[" * DEEP + "]" * DEEP
    if where == "bundle":
        root = shutil.copytree(bundle, tmp_path / "b")
        doc = (root / "bundle.json").read_text().rstrip()
        (root / "bundle.json").write_text(doc[:-1] + f', "x": {nest}}}')
        path, args = root / "bundle.json", ["simulate", "--bundle", str(root)]
    else:
        path = tmp_path / "deep.yaml"
        path.write_text(f'{{"profiles": ["rt3-paper"], "policies": ["rt3"], "x": {nest}}}')
        args = {
            "sweep": ["sweep", str(path), "--out", str(tmp_path / "o")],
            "profile": ["simulate", "--profile", str(path)],
            "profiles validate": ["profiles", "validate", str(path)],
        }[where]
    r = rt3lab(*args)
    assert r.code == 2, r.stderr
    line = one_line(r.stderr)
    assert line.startswith(f"rt3lab: error: {path}: ") and "nested deeper than" in line


@pytest.mark.parametrize("workload", ["continuous", "poisson:5"])
def test_a_negative_seed_is_refused_naming_seed(workload):
    r = rt3lab("simulate", "--seed", "-1", "--workload", workload, "--capacity-mah", "0.3")
    assert r.code == 2
    assert one_line(r.stderr) == (
        "rt3lab: error: --seed: expected an integer from 0 to 2**63 - 1, got -1"
    )


# --- 4. accepted but wrong ------------------------------------------------------------


@pytest.mark.parametrize("workload", ["periodic:1e-300", "periodic:1e7", "poisson:1e-300"])
def test_a_rate_outside_a_physical_range_is_refused(workload):
    """periodic:1e-300 reported on-time inferences where periodic:1 misses every one."""
    r = rt3lab("simulate", "--workload", workload, "--capacity-mah", "0.3")
    assert r.code == 2
    line = one_line(r.stderr)
    assert line.startswith(f"rt3lab: error: workload '{workload}': rate ")
    assert "(a period from 1 us to 7 days)" in line


def test_json_printers_are_strict_json():
    for args in (
        ["simulate", "--capacity-mah", "0.3", "--compare", "--json"],
        ["profiles", "list", "--json"],
        ["profiles", "show", "rt3-paper", "--json"],
    ):
        r = rt3lab(*args)
        assert r.code == 0, r.stderr
        json.loads(r.stdout, parse_constant=lambda c: pytest.fail(f"{c} in --json"))

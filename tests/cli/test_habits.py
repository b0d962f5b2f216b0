"""The CLI fits its users' habits: output that survives a pipe, fast start, real help.

Every test runs the installed console script with stdout piped (no terminal), as a user's
``rt3lab ... | cat`` or a log file would.
"""

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RT3LAB = shutil.which("rt3lab") or str(Path(sys.executable).with_name("rt3lab"))
HEAVY = ("pandas", "pyarrow", "matplotlib", "torch", "numpy", "pydantic", "dask", "scipy")


def rt3lab(*args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
    out = subprocess.run(
        [RT3LAB, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, **env},
    )
    if check:
        assert out.returncode == 0, out.stderr
    return out


def test_piped_profile_table_keeps_every_name_whole():
    table = rt3lab("profiles", "list").stdout
    rows = json.loads(rt3lab("profiles", "list", "--json").stdout)
    assert "…" not in table
    for r in rows:
        # Each profile is one line holding its name, board and SoC uncut.
        line = next(ln for ln in table.splitlines() if f" {r['name']} " in ln)
        assert r["board"] in line and r["soc"] in line


def test_piped_compare_table_keeps_every_number_whole():
    table = rt3lab("simulate", "--compare").stdout
    results = json.loads(rt3lab("simulate", "--compare", "--json").stdout)
    assert "…" not in table
    for r in results:
        line = next(ln for ln in table.splitlines() if f" {r['policy']} " in ln)
        assert f"{r['inferences']:,}" in line and f"{r['energy_j']:,.1f}" in line


def test_format_csv_is_the_table_as_csv_with_plain_numbers():
    rows = list(csv.DictReader(io.StringIO(rt3lab("profiles", "list", "--format", "csv").stdout)))
    expected = json.loads(rt3lab("profiles", "list", "--json").stdout)
    assert [r["name"] for r in rows] == [e["name"] for e in expected]
    assert [int(r["levels"]) for r in rows] == [e["levels"] for e in expected]
    sim = rt3lab("simulate", "--compare", "--format", "csv")
    got = {r["policy"]: int(r["inferences"]) for r in csv.DictReader(io.StringIO(sim.stdout))}
    results = json.loads(rt3lab("simulate", "--compare", "--json").stdout)
    assert got == {r["policy"]: r["inferences"] for r in results}
    bad = rt3lab("profiles", "list", "--format", "xml", check=False)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--format xml" in bad.stderr


def test_piped_progress_is_one_plain_line_per_step_with_elapsed_time(tmp_path):
    out = rt3lab(
        "sweep", "examples/sweep.yaml", "--out", str(tmp_path / "s"), "--threads",
        "--workers", "1", "--batch-size", "8", RT3LAB_PROGRESS_INTERVAL="0",
    )  # fmt: skip
    lines = [ln for ln in out.stderr.splitlines() if ln.startswith("[")]
    assert "━" not in out.stderr and "\x1b" not in out.stderr and "\r" not in out.stderr
    assert lines[0].endswith("0/32 (0%)") and lines[-1].endswith("32/32 (100%)")
    assert len(lines) >= 1 + 32 // 8  # a line per batch
    elapsed = [float(ln[1:].split(" s]")[0]) for ln in lines]
    assert elapsed == sorted(elapsed)


def test_help_imports_no_heavy_library():
    """The import graph of ``python -X importtime -m lab --help`` (a graph, not a timing)."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "lab", "--help"],
        capture_output=True, text=True, timeout=60, cwd=ROOT, check=True,
    )  # fmt: skip
    modules = {ln.rsplit("|", 1)[-1].strip() for ln in out.stderr.splitlines() if "|" in ln}
    assert "lab.cli" in modules
    assert sorted(m for m in modules if m.split(".")[0] in HEAVY) == []


def test_import_simulator_imports_no_heavy_library():
    code = f"import sys, simulator; print(sorted(m for m in sys.modules if m in {HEAVY!r}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    code = "import simulator; print(simulator.POLICIES[0], simulator.simulate.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["rt3", "simulate"]


@pytest.mark.parametrize(
    "command",
    [[], ["simulate"], ["report"], ["profiles", "validate"], ["meter", "record"],
     ["meter", "emulate"], ["compress"], ["profile"], ["sweep"], ["bench", "runtime"]],
)  # fmt: skip
def test_help_has_real_metavars_and_no_cut_text(command):
    text = rt3lab(*command, "--help").stdout
    assert "<bool>" not in text and "<str>" not in text and "<path>" not in text
    assert "{" not in text.split("\n\n")[0]  # the usage line
    assert "…" not in text and "━" not in text


def test_help_names_arguments_as_click_does():
    text = rt3lab("report", "--help").stdout
    assert "Usage: rt3lab report [OPTIONS] RUN_DIR" in text
    assert "--out PATH" in text


def test_profiles_validate_takes_several_files_and_names_each_bad_one(tmp_path):
    shipped = sorted((ROOT / "device_profiles" / "boards").glob("*.yaml"))
    assert len(shipped) >= 2
    ok = rt3lab("profiles", "validate", *map(str, shipped))
    assert ok.stdout.count(": ok (") == len(shipped)
    bad = tmp_path / "bad.yaml"
    bad.write_text("- not a mapping\n")
    out = rt3lab("profiles", "validate", str(shipped[0]), str(bad), str(shipped[1]), check=False)
    assert out.returncode == 2
    assert out.stdout.count(": ok (") == 2
    assert str(bad) in out.stderr and out.stderr.count("\n") == 1


def test_startup_bench_json_is_only_json_with_the_load_average():
    out = rt3lab("bench", "startup", "--runs", "1", "--json")
    data = json.loads(out.stdout)
    names = [r["command"] for r in data["rows"]]
    assert names[:3] == [
        "python -c 'import typer, rich'",
        "rt3lab --help",
        "python -c 'import simulator'",
    ]
    assert data["rows"][0]["ratio_to_typer_rich"] == 1.0
    assert len(data["load_average_before"]) == 3


@pytest.mark.parametrize("group", [[], ["meter"], ["bench"], ["profiles"]])
def test_command_summaries_are_whole(group):
    text = rt3lab(*group, "--help").stdout
    commands = text.split("Commands:", 1)[1]
    assert not [ln for ln in commands.splitlines() if ln.rstrip().endswith("...")]


def test_progress_on_a_terminal_is_a_rich_bar(tmp_path):
    """The same sweep under a real pty draws rich's bar instead of lines."""
    import pty
    import select

    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [RT3LAB, "sweep", "examples/sweep.yaml", "--out", str(tmp_path / "s"), "--threads",
         "--workers", "1"],
        stdin=slave, stdout=slave, stderr=slave, cwd=ROOT, close_fds=True,
    )  # fmt: skip
    os.close(slave)
    data = b""
    while True:
        ready, _, _ = select.select([master], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
        elif proc.poll() is not None:
            break
    proc.wait(timeout=60)
    os.close(master)
    text = data.decode(errors="replace")
    assert proc.returncode == 0, text
    assert "━" in text and "32/32" in text
    assert "[    0.0 s]" not in text

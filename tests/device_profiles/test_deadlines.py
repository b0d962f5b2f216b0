"""Boards whose variants can only miss (issue 33): `profiles show` and `simulate --json` say
so in one line on stderr, naming `rt3lab profile --bundle`; stdout stays the profile or the
JSON. The README's table agrees with the check."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from device_profiles import load_profile, resolve_profile_path
from device_profiles.deadlines import deadline_note, level_deadlines, only_misses

RT3LAB = shutil.which("rt3lab") or str(Path(sys.executable).with_name("rt3lab"))
README = Path(__file__).resolve().parents[2] / "device_profiles" / "README.md"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([RT3LAB, *args], capture_output=True, text=True, timeout=120)


def _with_a_fast_set(tmp_path: Path) -> Path:
    """rt3-paper plus a pattern set a third of bp's op counts: it meets every deadline."""
    prof = yaml.safe_load(resolve_profile_path("rt3-paper").read_text())
    bp = next(v for v in prof["variants"] if v["name"] == "bp")
    rows = [dict(row, latency_ms=row["latency_ms"] / 3) for row in bp["latency"]]
    fast = dict(bp, name="pp", nonzero_mults=bp["nonzero_mults"] / 3,
                nonzero_adds=bp["nonzero_adds"] / 3, latency=rows)  # fmt: skip
    prof["variants"].append(fast)
    path = tmp_path / "fast.yaml"
    path.write_text(yaml.safe_dump(prof))
    return path


def test_show_a_board_that_can_only_miss_says_it_needs_a_profiled_bundle():
    r = run("profiles", "show", "rt3-paper")
    assert r.returncode == 0, r.stderr
    assert yaml.safe_load(r.stdout)["name"] == "rt3-paper"  # stdout: the profile alone
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert "no variant (dense, bp) meets the deadline at any level" in lines[0]
    assert "every inference misses under every policy" in lines[0]
    assert "rt3lab profile --bundle BUNDLE --board rt3-paper" in lines[0]
    r = run("profiles", "show", "rt3-paper", "--json")
    assert json.loads(r.stdout)["name"] == "rt3-paper" and "--bundle" in r.stderr


def test_show_a_board_that_misses_at_some_levels_names_them():
    r = run("profiles", "show", "odroid-xu4")
    assert r.returncode == 0
    assert "1000 MHz (94 ms), 1400 MHz (104 ms)" in r.stderr
    assert "every inference misses under every policy" not in r.stderr


def test_show_is_quiet_when_some_variant_meets_every_deadline(tmp_path):
    r = run("profiles", "show", str(_with_a_fast_set(tmp_path)))
    assert r.returncode == 0 and r.stderr == ""


def test_simulate_json_warns_in_one_line_before_a_run_that_can_only_miss(tmp_path):
    r = run("simulate", "--profile", "rt3-paper", "--capacity-mah", "1", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["on_time_inferences"] == 0
    warnings = [ln for ln in r.stderr.splitlines() if ln.startswith("rt3lab: warning:")]
    assert len(warnings) == 1 and "rt3lab profile --bundle" in warnings[0]
    quiet = run("simulate", "--profile", str(_with_a_fast_set(tmp_path)), "--capacity-mah", "1",
                "--json")  # fmt: skip
    assert quiet.returncode == 0 and "warning" not in quiet.stderr
    assert json.loads(quiet.stdout)["on_time_inferences"] > 0


def test_the_workloads_own_deadline_counts(tmp_path):
    """A request every 50 ms: the fast set (67, 54 and 38 ms) then misses at 800 and
    1000 MHz; one every 1 ms: nothing meets it anywhere."""
    prof = load_profile(_with_a_fast_set(tmp_path))
    assert deadline_note(prof) is None
    note = deadline_note(prof, deadline_ms=50.0)
    assert "at 800 MHz (50 ms), 1000 MHz (50 ms):" in note and not only_misses(prof, (), 50.0)
    assert only_misses(prof, deadline_ms=1.0)
    assert "every inference misses" in deadline_note(prof, deadline_ms=1.0)


def _readme_rows() -> dict[str, str]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Boards whose variants can only miss") :]
    rows = re.findall(r"^\| `([a-z0-9-]+)` \| [^|]+ \| ([^|]+) \|$", section, flags=re.M)
    return dict(rows)


@pytest.mark.parametrize("name", ["rt3-paper", "odroid-xu4", "raspberry-pi-4", "pixel-3"])
def test_the_readme_table_is_what_the_check_finds(name):
    prof = load_profile(name)
    cell = _readme_rows()[name]
    missed = [d.freq_khz / 1000 for d in level_deadlines(prof) if d.deadline_ms and not d.meets]
    if only_misses(prof):
        assert cell.startswith("all three") and len(missed) == 3
        return
    listed = [float(x) for x in re.findall(r"[\d.]+", cell.split("(")[0])]
    assert listed == missed

"""The profiles commands through the real console-script entry point."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from device_profiles import dump_profile, load_profile

RT3LAB = shutil.which("rt3lab") or str(Path(sys.executable).with_name("rt3lab"))


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([RT3LAB, *args], capture_output=True, text=True, timeout=120)


def test_help_lists_the_commands():
    r = run("--help")
    assert r.returncode == 0
    assert "profiles" in r.stdout and "bench" in r.stdout


def test_profiles_list_json():
    r = run("profiles", "list", "--json")
    assert r.returncode == 0, r.stderr
    names = {row["name"] for row in json.loads(r.stdout)}
    assert {"rt3-paper", "odroid-xu4", "raspberry-pi-4", "pixel-3"} <= names


def test_profiles_show_json_is_the_validated_profile():
    r = run("profiles", "show", "rt3-paper", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["name"] == "rt3-paper"
    assert data["clusters"][0]["levels_khz"] == [800000, 1000000, 1400000]


def test_validate_ok_and_bad(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(dump_profile(load_profile("pixel-3")))
    assert run("profiles", "validate", str(good)).returncode == 0

    data = yaml.safe_load(good.read_text())
    data["battery"]["capacity_mah"] = -5
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    r = run("profiles", "validate", str(bad))
    assert r.returncode == 2
    assert f"{bad}: battery.capacity_mah: must be > 0, got -5" in r.stderr
    assert "Traceback" not in r.stderr


def test_bad_usage_exits_2():
    r = run("profiles", "show")
    assert r.returncode == 2
    r = run("no-such-command")
    assert r.returncode == 2


def test_yaml_syntax_error_exits_2_with_line(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("name: x\nboard: {name: [\n")
    r = run("profiles", "validate", str(bad))
    assert r.returncode == 2
    assert "YAML syntax error at line" in r.stderr and "Traceback" not in r.stderr

"""Issue 19, defect 5: physically impossible profiles are refused by ``profiles validate``.

Each case edits a shipped profile's YAML text and runs the real CLI: exit 2 and one line
naming the file and the field.
"""

from __future__ import annotations

import re

import pytest
import yaml
from cli_runner import rt3lab

from device_profiles import dump_profile, load_profile
from device_profiles.loader import shipped_profiles


def _doc(name: str = "odroid-xu4") -> dict:
    return yaml.safe_load(dump_profile(load_profile(name)))


def _write(tmp_path, doc: dict) -> str:
    path = tmp_path / "board.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


CASES = [
    ("battery.capacity_mah", lambda d: d["battery"].__setitem__("capacity_mah", True)),
    ("battery.capacity_mah", lambda d: d["battery"].__setitem__("capacity_mah", 1e308)),
    ("battery.capacity_mah", lambda d: d["battery"].__setitem__("capacity_mah", "3000")),
    ("battery.nominal_voltage_v", lambda d: d["battery"].__setitem__("nominal_voltage_v", 1e4)),
    ("power[0].model.c_eff_f", lambda d: d["power"][0]["model"].__setitem__("c_eff_f", 1e300)),
    (
        "power[0].model.p_static_w",
        lambda d: d["power"][0]["model"].__setitem__("p_static_w", 1e300),
    ),
    ("battery.thevenin.r0_ohm", lambda d: d["battery"]["thevenin"].__setitem__("r0_ohm", 1e6)),
    (
        "battery.thevenin.ocv",
        lambda d: d["battery"]["thevenin"]["ocv"].__setitem__(
            "ocv_v", list(reversed(d["battery"]["thevenin"]["ocv"]["ocv_v"]))
        ),
    ),
    (
        "battery.thevenin.rc[0].c_f",
        lambda d: d["battery"]["thevenin"]["rc"][0].__setitem__("c_f", 1e12),
    ),
    ("clusters[0].voltages_v[0]", lambda d: d["clusters"][0]["voltages_v"].__setitem__(0, 50.0)),
    ("clusters[0].levels_khz[0]", lambda d: d["clusters"][0]["levels_khz"].__setitem__(0, True)),
    (
        "clusters[1].levels_khz[18]",
        lambda d: d["clusters"][1]["levels_khz"].__setitem__(18, 10**12),
    ),
    (
        "workload.timing_constraints[0].deadline_ms",
        lambda d: d["workload"]["timing_constraints"][0].__setitem__("deadline_ms", 1e300),
    ),
    ("battery.kibam.k_per_s", lambda d: d["battery"]["kibam"].__setitem__("k_per_s", 1e9)),
]


@pytest.mark.parametrize(("field", "edit"), CASES, ids=[f"{i}-{c[0]}" for i, c in enumerate(CASES)])
def test_impossible_values_are_refused_naming_file_and_field(tmp_path, field, edit):
    doc = _doc()
    edit(doc)
    path = _write(tmp_path, doc)
    r = rt3lab("profiles", "validate", path)
    assert r.code == 2, r
    line = r.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert line.startswith(f"rt3lab: error: {path}: {field}"), line


def test_bool_is_not_read_as_one_mah(tmp_path):
    doc = _doc()
    doc["battery"]["capacity_mah"] = True
    r = rt3lab("profiles", "validate", _write(tmp_path, doc))
    assert r.code == 2
    assert "got True" in r.stderr


def test_duplicate_keys_name_file_line_and_key(tmp_path):
    text = dump_profile(load_profile("rt3-paper"))
    # Give battery a second capacity_mah right after the first: last-wins is refused.
    m = re.search(r"^(\s+)capacity_mah: .*$", text, flags=re.M)
    assert m
    line_no = text[: m.end()].count("\n") + 2
    text = text[: m.end()] + f"\n{m.group(1)}capacity_mah: 1" + text[m.end() :]
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    r = rt3lab("profiles", "validate", str(path))
    assert r.code == 2
    assert r.stderr.strip() == (
        f"rt3lab: error: {path}: YAML error at line {line_no}, column {len(m.group(1)) + 1}: "
        "duplicate key 'capacity_mah'"
    )


def test_binary_yaml_names_the_file(tmp_path):
    path = tmp_path / "blob.yaml"
    path.write_bytes(b"name: x\n\xff\xfe\x00garbage")
    r = rt3lab("profiles", "validate", str(path))
    assert r.code == 2
    assert r.stderr.strip() == (
        f"rt3lab: error: {path}: not a UTF-8 text file (byte 0xff at offset 8)"
    )


def test_several_problems_stay_on_one_line(tmp_path):
    doc = _doc()
    doc["battery"]["capacity_mah"] = -1
    doc["battery"]["nominal_voltage_v"] = 0
    r = rt3lab("profiles", "validate", _write(tmp_path, doc))
    assert r.code == 2
    assert r.stderr.count("\n") == 1
    assert "battery.capacity_mah" in r.stderr and "battery.nominal_voltage_v" in r.stderr


@pytest.mark.parametrize("name", sorted(shipped_profiles()))
def test_shipped_profiles_are_within_bounds(name):
    r = rt3lab("profiles", "validate", str(shipped_profiles()[name]))
    assert r.code == 0, r.stderr

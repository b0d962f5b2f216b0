"""Bad profiles get errors naming the file, the field path and what was expected."""

import math

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from device_profiles import ProfileError, dump_profile, load_profile, parse_profile


def base() -> dict:
    return yaml.safe_load(dump_profile(load_profile("rt3-paper")))


def check(data: dict, *fragments: str) -> str:
    with pytest.raises(ProfileError) as info:
        parse_profile(yaml.safe_dump(data), source="board.yaml")
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_yaml_syntax_error_names_the_line():
    text = "name: x\nboard:\n  name: [unclosed\n  soc: y\n"
    with pytest.raises(ProfileError, match=r"board.yaml: YAML syntax error at line \d+"):
        parse_profile(text, source="board.yaml")


def test_top_level_must_be_a_mapping():
    with pytest.raises(ProfileError, match="expected a mapping"):
        parse_profile("- 1\n- 2\n", source="board.yaml")


def test_negative_capacity():
    d = base()
    d["battery"]["capacity_mah"] = -5
    check(d, "board.yaml: battery.capacity_mah: must be > 0, got -5")


def test_nan_value():
    d = base()
    d["battery"]["nominal_voltage_v"] = math.nan
    check(d, "battery.nominal_voltage_v", "finite")


def test_unknown_key():
    d = base()
    d["battery"]["capacity_wh"] = 10
    check(d, "battery.capacity_wh: unknown key")


def test_frequencies_not_strictly_increasing():
    d = base()
    d["clusters"][0]["levels_khz"] = [800000, 800000, 1400000]
    check(d, "clusters[0].levels_khz", "strictly increasing")


def test_governor_threshold_refers_to_a_missing_level():
    d = base()
    d["governor"]["steps"][0]["cap_khz"] = 1200000
    check(d, "governor.steps[0].cap_khz: 1200000 is not a level")


def test_governor_start_refers_to_a_missing_level():
    d = base()
    d["governor"]["start_khz"] = 2000000
    check(d, "governor.start_khz: 2000000 is not a level")


def test_voltage_list_length_differs_from_levels():
    d = base()
    d["clusters"][0]["voltages_v"] = [1.0, 1.1]
    check(d, "clusters[0]", "voltages_v has 2 entries but levels_khz has 3")


def test_timing_constraint_at_a_missing_level():
    d = base()
    d["workload"]["timing_constraints"][0]["freq_khz"] = 1234
    check(d, "workload.timing_constraints[0].freq_khz: 1234 is not a level")


def test_provenance_key_must_exist():
    d = base()
    d["battery"]["provenance"] = "nowhere"
    check(d, "battery.provenance: provenance 'nowhere' is not a key of sources")


def test_measured_provenance_needs_meter_date_and_tool():
    d = base()
    d["battery"]["provenance"] = {"kind": "measured", "meter": "um34c"}
    check(d, "battery.provenance.date: required field is missing")


def test_power_levels_must_cover_every_level():
    d = base()
    d["power"][0] = {
        "cluster": "cpu",
        "levels": [{"freq_khz": 800000, "busy_w": 1, "idle_w": 0.1, "provenance": "rt3-code"}],
    }
    check(d, "power[0].levels: need one entry per level")


def test_power_needs_exactly_one_form():
    d = base()
    del d["power"][0]["model"]
    check(d, "power[0]", "exactly one of 'levels'")


def test_battery_model_without_its_parameters():
    d = base()
    d["battery"]["model"] = "kibam"
    del d["battery"]["kibam"]
    check(d, "battery", "model is 'kibam' but no 'kibam' parameters")


def test_missing_file_and_unknown_name():
    with pytest.raises(ProfileError, match="no such profile file"):
        load_profile("/nonexistent/board.yaml")
    with pytest.raises(ProfileError, match="unknown profile 'no-such-board'"):
        load_profile("no-such-board")


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300))
def test_parser_never_crashes_on_arbitrary_text(text):
    try:
        parse_profile(text, source="fuzz.yaml")
    except ProfileError as exc:
        assert str(exc).startswith("fuzz.yaml")

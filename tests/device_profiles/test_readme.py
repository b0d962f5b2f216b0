"""The README's example profile validates, and its error lines are what the loader prints."""

import re
from pathlib import Path

from device_profiles import parse_profile, unprovenanced_numbers

README = Path(__file__).resolve().parents[2] / "device_profiles" / "README.md"


def test_readme_example_validates():
    blocks = re.findall(r"```yaml\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no yaml example"
    profile = parse_profile(blocks[0], source="README.md")
    assert profile.name == "my-board"
    assert profile.power_at(1200000) == (2.6, 0.5)
    assert unprovenanced_numbers(profile) == []


def test_readme_bounds_table_matches_the_schema():
    """Each range in the README's bounds table is the one the schema enforces."""
    import yaml

    from device_profiles import dump_profile, load_profile
    from device_profiles.loader import ProfileError

    text = README.read_text()
    assert "## Bounds on physical numbers" in text
    # (field to edit, the README's upper bound): just above it is refused, at it accepted.
    cases = {
        ("battery", "capacity_mah"): 1e6,
        ("battery", "nominal_voltage_v"): 60.0,
        ("battery", "thevenin", "r0_ohm"): 100.0,
        ("battery", "kibam", "k_per_s"): 1.0,
        ("power", 0, "model", "c_eff_f"): 1e-7,
        ("power", 0, "model", "p_static_w"): 1000.0,
        ("workload", "timing_constraints", 0, "deadline_ms"): 3.6e6,
        ("latency_model", "reference_ghz"): 10.0,
    }
    for path, hi in cases.items():
        shown = f"{hi:g}".replace("e+0", "e").replace("e-0", "e-")
        assert shown in text or f"{hi:,.0f}" in text or str(hi) in text, (path, shown)
        for value, ok in ((hi, True), (hi * 1.001, False)):
            doc = yaml.safe_load(dump_profile(load_profile("odroid-xu4")))
            target = doc
            for part in path[:-1]:
                target = target[part]
            target[path[-1]] = value
            try:
                parse_profile(yaml.safe_dump(doc), source="x.yaml")
                accepted = True
            except ProfileError as exc:
                accepted = False
                assert ".".join(str(p) for p in path).replace(".0.", "[0].") in str(exc)
            assert accepted == ok, (path, value)

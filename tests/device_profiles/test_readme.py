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

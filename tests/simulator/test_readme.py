"""The README's examples run."""

import doctest
from pathlib import Path


def test_readme_examples_run():
    readme = Path(__file__).resolve().parents[2] / "simulator" / "README.md"
    result = doctest.testfile(str(readme), module_relative=False)
    assert result.attempted >= 3 and result.failed == 0

"""The README's Python examples run."""

import re
from pathlib import Path

README = Path(__file__).parents[2] / "power_meter" / "README.md"


def test_readme_examples_run(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks
    for code in blocks:
        exec(compile(code, str(README), "exec"), {})
    assert capsys.readouterr().out.strip() == "True 0.5"

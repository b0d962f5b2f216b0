"""Issue 19, defect 10: report.md shows text from the run directory as text, never as HTML,
links, images or table structure (the HTML report was already escaped)."""

from __future__ import annotations

import json

import pytest
from fake_run import write_fake_run

from lab.cli import main

EVIL = "bp<script>alert(1)</script> | [x](http://e.vil) ![i](http://e.vil/i.png) *b*"


def test_report_md_escapes_a_hostile_policy_name(tmp_path, capsys):
    root = tmp_path / "run"
    records = write_fake_run(root, with_extras=False)
    extra = dict(records[1], policy=EVIL)
    (root / "results.json").write_text(json.dumps([*records, extra], indent=1))
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        main(["report", str(root), "--out", str(out)])
    assert exc.value.code in (0, None), capsys.readouterr().err
    md = (out / "report.md").read_text()
    assert "<script>" not in md
    escaped = (
        "bp&lt;script&gt;alert(1)&lt;/script&gt; \\| \\[x\\](http://e.vil) "
        "!\\[i\\](http://e.vil/i.png) \\*b\\*"
    )
    assert escaped in md
    row = next(ln for ln in md.splitlines() if escaped in ln and ln.startswith("| "))
    cells = [c for c in row.replace("\\|", "").split("|")]
    header = next(ln for ln in md.splitlines() if ln.startswith("| ") and "policy" in ln)
    assert len(cells) == len(header.split("|"))  # the name did not add a column

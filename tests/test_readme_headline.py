"""The README's demo headline is exactly what the recorded demo JSON under docs/ says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.demo.docs import (
    BEGIN,
    END,
    HeadlineError,
    headline_markdown,
    load_headline,
    main,
    readme_block,
)

ROOT = Path(__file__).resolve().parents[1]


def test_readme_matches_the_recorded_demo_json():
    data = load_headline(ROOT / "docs" / "demo-headline.json")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme_block(readme) == headline_markdown(data)
    assert (ROOT / "docs" / "demo-battery-life.png").stat().st_size > 1000
    rows = {r["policy"]: r for r in data["policies"]}
    for pol in ("rt3", "dense-max", "dvfs-only:bp"):
        for key in ("on_time_inferences", "missed_inferences", "battery_life_h", "mean_accuracy"):
            assert key in rows[pol]


def test_update_rewrites_only_the_block_and_a_bad_json_is_named(tmp_path, capsys):
    data = load_headline(ROOT / "docs" / "demo-headline.json")
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nbefore\n{BEGIN}\nstale\n{END}\nafter\n", encoding="utf-8")
    src = tmp_path / "h.json"
    src.write_text(json.dumps(data))
    assert main([str(src), str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("# x\n\nbefore\n") and text.endswith(f"{END}\nafter\n")
    assert readme_block(text) == headline_markdown(data)
    assert main([str(src), str(readme)]) == 0 and "already matches" in capsys.readouterr().out
    src.write_text("{}")
    with pytest.raises(HeadlineError, match="format: expected 'rt3lab-demo-headline'"):
        load_headline(src)
    assert main([str(src), str(readme)]) == 2

"""The study README's schemes block is what the recorded ``docs/schemes-quick.json`` says (or,
until it is recorded, says that it is not), and ``reports.schemes_map`` rewrites only it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reports.schemes_map import (
    BEGIN,
    END,
    FIGURE_FROM_README,
    RECORDED_JSON,
    block_of,
    main,
    readme_block,
)

ROOT = Path(__file__).resolve().parents[3]
README = ROOT / "lab" / "study" / "README.md"


def _doc() -> dict:
    best = {"policy": "oracle", "battery_life_h": 7.5, "ci95": [7.0, 8.0],
            "mean_accuracy": 0.296, "accuracy_loss_points": 0.4}  # fmt: skip
    return {
        "max_accuracy_loss": 1.0,
        "schemes": {"width": {"dense_accuracy": 0.3, "best_within_accuracy": best}},
        "summary": {
            "sentences": ["Within 1 point(s) of dense, width buys the most battery."],
            "deadline_map_sentences": ["At dense-top: width lasts longest."],
        },
    }


def _block_and_recording(readme):
    """``readme``'s schemes block and the recorded study (None, the block saying so, when
    there is no recording yet)."""
    block = block_of(readme.read_text(encoding="utf-8"), str(readme))
    recorded = ROOT / RECORDED_JSON
    if not recorded.is_file():
        assert block.startswith("Not recorded yet")
        return block, None
    return block, json.loads(recorded.read_text(encoding="utf-8"))


def test_readme_block_matches_the_recorded_study():
    block, doc = _block_and_recording(README)
    if doc is None:
        return
    assert block == readme_block(doc, FIGURE_FROM_README).strip("\n")
    assert (README.parent / FIGURE_FROM_README).resolve().stat().st_size > 1000
    # every scheme is on the map, or the project README says why not
    missing = {"rt3", "width", "depth", "early-exit"} - set(doc["schemes"])
    said = (ROOT / "README.md").read_text(encoding="utf-8")
    for scheme in missing:
        assert f"`compress --scheme {scheme}` refused" in said, scheme
    assert doc["budget"] == "quick"
    summary = doc["summary"]
    for sentence in (*summary["sentences"], *summary["deadline_map_sentences"]):
        assert sentence in block


def test_update_rewrites_only_the_block(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\nbefore\n{BEGIN}\nstale\n{END}\nafter\n", encoding="utf-8")
    study = tmp_path / "s.json"
    study.write_text(json.dumps(_doc()))
    assert main([str(study), str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("# x\nbefore\n") and text.endswith(f"{END}\nafter\n")
    assert "| width | oracle | 7.50 | [7.00, 8.00] | 0.2960 | 0.40 | 0.3000 |" in text
    assert "- Within 1 point(s) of dense, width buys the most battery." in text
    assert "(the same variants):\n\n- At dense-top: width lasts longest." in text
    assert main([str(study), str(readme)]) == 0 and "already matches" in capsys.readouterr().out
    readme.write_text("no block")
    assert main([str(study), str(readme)]) == 2
    assert "no <!-- schemes-quick:begin -->" in capsys.readouterr().err


@pytest.mark.parametrize("args", [[], ["one"]])
def test_usage(args):
    assert main(args) == 2


def test_root_readme_block_matches_the_recorded_study():
    """The project README shows the same block, its figure path from the root."""
    block, doc = _block_and_recording(ROOT / "README.md")
    if doc is None:
        return
    figure = "docs/schemes/schemes-frontier.png"
    assert block == readme_block(doc, figure).strip("\n")
    assert (ROOT / figure).stat().st_size > 1000

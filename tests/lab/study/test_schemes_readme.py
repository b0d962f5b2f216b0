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


def _h(policy: dict) -> str:
    """A policy's hours with their interval, as the README writes them."""
    lo, hi = policy["battery_life_h_ci95"]
    return f"{policy['battery_life_h']:.2f} h [{lo:.2f}, {hi:.2f}]"


def test_root_readme_plain_reading_quotes_the_recorded_study():
    """The hand-written reading under the project README's block: its hours, intervals and
    points are the recorded study's, and its claims (a clear winner, the winner's policy
    the same table as one set held fixed, RT3's and depth's policies never switching) follow
    it."""
    doc = json.loads((ROOT / RECORDED_JSON).read_text(encoding="utf-8"))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("Read it plainly: within 1 point of dense accuracy")
    text = " ".join(readme[start : readme.index("\n\n", start)].split())
    schemes, summary = doc["schemes"], doc["summary"]
    assert summary["winner"] == "rt3" and summary["clear"] and "and clearly" in text
    rt3 = schemes["rt3"]
    best = rt3["best_within_accuracy"]
    won = rt3["policies"][best["policy"]]
    assert f"{_h(won)} at {best['accuracy_loss_points']:.2f} points below dense" in text
    (fixed,) = [
        n
        for n, p in rt3["policies"].items()
        if n.startswith("dvfs-only:pp") and p["battery_life_h"] == won["battery_life_h"]
    ]
    assert f"held fixed at {fixed.split(':')[1]} at every level" in text
    for name, label in (("width", "width's"), ("early-exit", "early exit's"), ("depth", "depth's")):
        b = schemes[name]["best_within_accuracy"]
        assert f"{label} `{b['policy']}` {_h(schemes[name]['policies'][b['policy']])}" in text
    own = rt3["policies"]["rt3"]
    assert set(own["table"].values()) == {"pp-1400mhz"}  # no switch
    assert "ran its least sparse set (pp-1400mhz) at every level" in text
    hours, points = own["battery_life_h"], own["accuracy_loss_points"]
    assert f"lasts {hours:.2f} h at {points:.2f} points" in text
    depth = schemes["depth"]["policies"]["rt3"]
    (one,) = set(depth["table"].values())
    assert not depth["within_accuracy"] and f"depth's ran {one} at every level" in text
    assert f"lasts {depth['battery_life_h']:.2f} h at {depth['accuracy_loss_points']:.2f}" in text
    for name in ("width", "early-exit"):
        assert {u["freq_khz"] for u in schemes[name]["unmet_deadlines"]} == {1000000, 800000}
    w = {u["freq_khz"]: u for u in schemes["width"]["unmet_deadlines"]}
    est = f"({w[1000000]['estimate_ms']:.3f} and {w[800000]['estimate_ms']:.3f} ms against "
    assert est + f"{w[1000000]['deadline_ms']:.3f} and {w[800000]['deadline_ms']:.3f} ms)" in text
    assert not schemes["rt3"]["unmet_deadlines"] and not schemes["depth"]["unmet_deadlines"]
    limits = [
        s["speedup_over_limit"]
        for n in ("width", "depth")
        for s in json.loads((ROOT / "docs" / f"runtime-bench-{n}-quick.json").read_text())[
            "sets"
        ].values()
    ]
    assert f"({min(limits):.2f} to {max(limits):.2f} of it;" in text

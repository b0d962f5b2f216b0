"""Issue 29: a run with a deadline map (``deadlines.json``, here the real output of a reduced
demo's ``study deadlines``) gets a table, two figures and the study's sentences in the
report, and its verdict says what would change the answer; the README block shows the map
from the headline JSON. A ``deadlines.json`` that is not a study is refused in one line."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from demo_run import write_demo_run

from reports.deadline_map import map_rows, map_sentences, ratio_words, sets_words
from reports.report import build_report
from reports.run import RunDirError, load_run

STUDY = Path(__file__).parents[1] / "data" / "deadline_study_reduced.json"


@pytest.fixture
def run_with_map(tmp_path):
    run = tmp_path / "run"
    write_demo_run(run)
    shutil.copy(STUDY, run / "deadlines.json")
    return run


def test_report_shows_the_map_its_figures_and_sentences(run_with_map, tmp_path):
    study = json.loads(STUDY.read_text())
    files = build_report(run_with_map, tmp_path / "report")
    md = Path(files.markdown).read_text()
    section = md.split("## The deadline map", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")][1:]
    assert len(rows) == len(study["points"])
    for row, point in zip(rows, study["points"], strict=True):
        cells = [c.strip() for c in row.strip("| ").split("|")]
        assert cells[0] == f"{point['top_deadline_ms']:.3g}"
        ratio = point["gains"]["static-sparse"]["hours"]
        assert cells[4].replace("\\", "") == ratio_words(ratio)
    for sentence in study["summary"]["sentences"]:
        assert sentence in md
    verdict = md.split("## ", 2)[1]
    assert map_sentences(study)[0] in verdict  # what would change the answer
    assert "figures/deadline_gains.png" in md and "figures/deadline_accuracy.png" in md


def test_run_without_a_map_has_no_map_section(tmp_path):
    run = tmp_path / "run"
    write_demo_run(run)
    md = Path(build_report(run, tmp_path / "report").markdown).read_text()
    assert "deadline map" not in md.lower()


@pytest.mark.parametrize("doc", [[1, 2], {"points": "x"}, {"points": []}])
def test_a_deadlines_json_that_is_not_a_study_is_refused(run_with_map, doc):
    (run_with_map / "deadlines.json").write_text(json.dumps(doc))
    with pytest.raises(RunDirError, match=r"deadlines\.json: expected a deadline study"):
        load_run(run_with_map)


def test_map_rows_and_sets_follow_the_points():
    study = json.loads(STUDY.read_text())
    header, rows = map_rows(study)
    assert len(header) == len(rows[0]) and len(rows) == len(study["points"])
    for point in study["points"]:
        table = point["policies"]["rt3"]["table"]
        top_first = [table[k] for k in sorted(table, key=lambda k: -int(k))]
        assert sets_words(point) == " / ".join(top_first)


def test_readme_block_shows_the_map_from_the_headline():
    from lab.demo.docs import map_lines, map_of

    study = json.loads(STUDY.read_text())
    lines = map_lines({"deadline_map": map_of(study)})
    table = [line for line in lines if line.startswith("| ")]
    assert len(table) == 1 + len(study["points"])  # the header and a row per point
    assert study["summary"]["sentences"][0] in lines
    assert map_lines({}) == []

"""``rt3lab demo --reduced`` on a fresh cache: the report parses, every image is embedded
and non-empty, and its tables hold the numbers of results.json. A second run is cached.

``--reduced`` still trains and compresses a small model (``compress --quick --episodes
2``): about 70 s on 2 cores, which the default run affords for the project's main job."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "reports"))  # the report's HTML reader

from report_html import check_headline_against, parse_report, png_payloads

from lab.cli import main
from lab.demo.run import DemoUnavailable, _root_command, plan, require, run_demo


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("demo")
    mp = pytest.MonkeyPatch()
    mp.setenv("RT3LAB_CACHE", str(tmp / "cache"))
    try:
        with pytest.raises(SystemExit) as exc:
            main(["demo", "--out", str(tmp / "out"), "--reduced", "--docs", str(tmp / "docs")])
        assert exc.value.code in (0, None)
        yield tmp
    finally:
        mp.undo()


def test_demo_report_is_self_contained_and_consistent(demo_run):
    out = demo_run / "out"
    html = out / "report" / "report.html"
    parsed = parse_report(html)
    assert len(png_payloads(parsed)) >= 5
    results = json.loads((out / "run" / "results.json").read_text())
    from simulator import BASELINES

    assert {"rt3", *BASELINES} <= {r["policy"] for r in results}
    assert check_headline_against(parsed, results) == len(results)
    repro = {row[0]: row for row in parsed.tables["reproduction"][1:]}
    by = {r["policy"]: r for r in results}
    assert by["dense-max"]["inferences_per_variant"]["dense"] == by["dense-max"]["inferences"]
    key = "battery-life gain, rt3 over dense-max (on-time inferences per charge)"
    if by["dense-max"]["on_time_inferences"]:
        gain = by["rt3"]["on_time_inferences"] / by["dense-max"]["on_time_inferences"]
        assert repro[key][2] == f"{gain:.2f}x"
    else:
        assert repro[key][2].startswith(("unbounded", "n/a"))
    assert parsed.verdict.startswith("Workload: periodic")
    bench = json.loads((out / "run" / "runtime_bench.json").read_text())
    switch = next(v for k, v in repro.items() if k.startswith("pattern-set switch"))
    assert switch[2] == f"{bench['switch_ms_median']:.3f} ms"
    commands = json.loads((out / "run" / "commands.json").read_text())
    assert commands["bundle"].startswith("rt3lab compress")


def test_demo_json_prints_the_headline_per_policy(demo_run, monkeypatch, capsys):
    monkeypatch.setenv("RT3LAB_CACHE", str(demo_run / "cache"))
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--out", str(demo_run / "json"), "--reduced", "--json"])
    assert exc.value.code in (0, None)
    data = json.loads(capsys.readouterr().out)  # progress went to stderr
    rows = {r["policy"]: r for r in data["policies"]}
    for pol in ("rt3", "dense-max", "dvfs-only:bp", "dvfs-only:dense", "static-sparse"):
        for key in ("on_time_inferences", "missed_inferences", "battery_life_h", "mean_accuracy"):
            assert key in rows[pol], (pol, key)
    assert data["workload"].startswith("periodic:")
    # Under the periodic workload the hours follow the model, not the power model alone.
    hours = {rows[p]["battery_life_h"] for p in ("rt3", "dense-max", "dvfs-only:bp")}
    assert len(hours) == 3
    docs = json.loads((demo_run / "docs" / "demo-headline.json").read_text())
    assert docs["format"] == "rt3lab-demo-headline" and docs["policies"]
    assert (demo_run / "docs" / "demo-battery-life.png").stat().st_size > 1000


def test_second_run_uses_the_cache(demo_run, monkeypatch):
    monkeypatch.setenv("RT3LAB_CACHE", str(demo_run / "cache"))
    lines: list[str] = []
    st = run_demo(plan(demo_run / "again", "rt3-paper", True), echo=lines.append)
    assert st.cached == dict.fromkeys(
        ("compress", "evaluate", "bench runtime", "host profile"), True
    )
    assert (demo_run / "again" / "report" / "report.html").is_file()


def test_a_missing_piece_is_named():
    root = _root_command()
    with pytest.raises(DemoUnavailable, match="`rt3lab nosuch` is not available"):
        require(root, ["nosuch"], (), "nobody")
    with pytest.raises(DemoUnavailable, match="has no option --frobnicate"):
        require(root, ["report"], ("--frobnicate",), "reports")


def test_unknown_board_is_bad_input_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RT3LAB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--out", str(tmp_path / "o"), "--board", "no-such-board"])
    assert exc.value.code == 2
    assert "no-such-board" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()


def test_the_cache_key_follows_the_code(tmp_path):
    """A cached bundle, bench or profile made by other code is never reused."""
    from lab.demo.run import code_fingerprint

    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    (tmp_path / "pkg" / "sub" / "b.yaml").write_text("k: 1\n")
    (tmp_path / "pkg" / "notes.txt").write_text("ignored")
    roots = [tmp_path / "pkg"]
    first = code_fingerprint(roots)
    (tmp_path / "pkg" / "notes.txt").write_text("still ignored")
    assert code_fingerprint(roots) == first
    (tmp_path / "pkg" / "sub" / "b.yaml").write_text("k: 2\n")
    second = code_fingerprint(roots)
    assert second != first
    (tmp_path / "pkg" / "a.py").rename(tmp_path / "pkg" / "c.py")  # same bytes, new path
    assert code_fingerprint(roots) not in (first, second)

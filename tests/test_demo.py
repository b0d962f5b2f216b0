"""``rt3lab demo --reduced --json`` on an empty cache: stdout is the headline JSON alone;
the report parses, every image is embedded and non-empty, and its tables hold the numbers
of results.json; commands.json's lines are ones the CLI takes. A second run is cached.

``--reduced`` still trains and compresses a small model (``compress --quick --episodes
2``): about 70 s on 2 cores, which the default run affords for the project's main job."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "reports"))  # the report's HTML reader

from report_html import check_headline_against, parse_report, png_payloads

from lab.cli import main
from lab.demo.run import REPLICAS_REDUCED, fresh_cache, plan, run_demo

RT3LAB = str(Path(sys.executable).with_name("rt3lab"))
pytestmark = pytest.mark.timeout(1500)  # the cold reduced demo, on a shared machine


def demo_process(args: list[str], cache: Path, **env: str) -> subprocess.CompletedProcess:
    """``rt3lab demo ARGS`` in its own process on the cache ``cache``."""
    return subprocess.run(
        [RT3LAB, "demo", *args],
        env={**os.environ, "RT3LAB_CACHE": str(cache), **env},
        capture_output=True,
        text=True,
        timeout=1400,
        check=False,
    )


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """The reduced demo with --json from an empty cache (a real process, stdout apart)."""
    tmp = tmp_path_factory.mktemp("demo")
    args = ["--out", str(tmp / "out"), "--reduced", "--json", "--docs", str(tmp / "docs")]
    (tmp / "home").mkdir()  # an empty HOME: nothing cached under ~/.cache is found
    proc = demo_process(args, tmp / "cache", HOME=str(tmp / "home"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    (tmp / "stdout.txt").write_text(proc.stdout)
    (tmp / "stderr.txt").write_text(proc.stderr)
    return tmp


def test_demo_report_is_self_contained_and_consistent(demo_run):
    out = demo_run / "out"
    html = out / "report" / "report.html"
    parsed = parse_report(html)
    assert len(png_payloads(parsed)) >= 5
    results = json.loads((out / "run" / "results.json").read_text())
    from simulator import BASELINES

    assert {"rt3", *BASELINES} <= {r["policy"] for r in results}
    assert check_headline_against(parsed, results) == len(results)
    # a quantity with a note carries its number, " [1]": the notes follow the table
    repro = {re.sub(r" \[\d+\]$", "", row[0]): row for row in parsed.tables["reproduction"][1:]}
    by = {r["policy"]: r for r in results}
    assert by["dense-max"]["inferences_per_variant"]["dense"] == by["dense-max"]["inferences"]
    key = "battery-life gain, rt3 over dense-max (on-time inferences per charge)"
    if by["dense-max"]["on_time_inferences"]:
        gain = by["rt3"]["on_time_inferences"] / by["dense-max"]["on_time_inferences"]
        assert repro[key][2] == f"{gain:.2f}x"
    else:
        assert repro[key][2].startswith(("unbounded", "n/a"))
    # the verdict section opens with its heading, then the workload sentence
    assert parsed.verdict.removeprefix("Verdict ").startswith("Workload: periodic")
    bench = json.loads((out / "run" / "runtime_bench.json").read_text())
    switch = next(v for k, v in repro.items() if k.startswith("pattern-set switch"))
    assert switch[2] == f"{bench['switch_ms_median']:.3f} ms"


def test_the_recorded_commands_are_lines_the_cli_takes(demo_run):
    """commands.json: each artefact's line parses with the real CLI, names the cached
    bundle, and asks for what the demo asked (the reduced demo's budget and bounds)."""
    import typer

    from lab.cli import build_app

    commands = json.loads((demo_run / "out" / "run" / "commands.json").read_text())
    assert commands["bundle"].startswith("rt3lab compress")
    root = typer.main.get_command(build_app())
    params = {}
    for artifact in ("bundle", "evaluate.json", "runtime_bench.json", "profile.yaml"):
        words = shlex.split(commands[artifact])
        assert words[0] == "rt3lab", commands[artifact]
        cmd, words = root, words[1:]
        while isinstance(getattr(cmd, "commands", None), dict):
            cmd = cmd.commands[words.pop(0)]
        params[artifact] = cmd.make_context("rt3lab", words).params
    bundle = (demo_run / "out" / "bundle").resolve()
    assert (bundle / "bundle.json").is_file()
    assert params["bundle"]["out"].resolve() == bundle
    for artifact in ("evaluate.json", "runtime_bench.json", "profile.yaml"):
        assert params[artifact]["bundle"].resolve() == bundle
    assert params["bundle"]["quick"] and params["bundle"]["episodes"] == 2
    bench = params["runtime_bench.json"]
    assert (bench["rounds"], bench["per_round"], bench["switch_reps"]) == (3, 2, 200)
    assert not bench["anchors"] and not bench["layers"] and bench["as_json"]
    prof = params["profile.yaml"]
    assert (prof["power"], prof["min_runs"], prof["max_runs"], prof["time_cap"]) == (
        "none", 5, 200, 2.0,
    )  # fmt: skip
    assert params["profile.yaml"]["out"].is_file()


def test_demo_json_prints_the_headline_per_policy(demo_run):
    data = json.loads((demo_run / "stdout.txt").read_text())  # JSON alone, from empty
    assert data == json.loads((demo_run / "out" / "headline.json").read_text())
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
    err = (demo_run / "stderr.txt").read_text()
    assert "[10/10] report: report " in err  # progress went to stderr


def test_demo_json_carries_the_measured_uncertainty(demo_run):
    """Issue 29: each policy's 95% intervals, rt3's set per level across resamples, each
    gain's intervals and whether they straddle 1, life within 1 point of dense; the point
    estimates are the measurements' own (the bootstrap saw no sample disagree with the
    profile) and every latency and accuracy was resampled."""
    data = json.loads((demo_run / "stdout.txt").read_text())
    rows = {r["policy"]: r for r in data["policies"]}
    for pol, row in rows.items():
        for key in ("battery_life_h_ci95", "on_time_inferences_ci95", "mean_accuracy_ci95"):
            lo, hi = row[key]
            assert lo <= hi, (pol, key)
        assert "life_within_dense_h" in row
    lo, hi = rows["rt3"]["mean_accuracy_ci95"]
    assert lo < hi  # the test sequences were resampled
    share = rows["rt3"]["variant_share"]
    assert share and all(abs(sum(s.values()) - 1) < 1e-9 for s in share.values())
    for g in data["gains"]:
        for fig in ("hours", "on_time"):
            assert f"{fig}_ci95" in g and f"{fig}_straddles_one" in g
    iv = data["intervals"]
    assert iv["resamples"] == 200 and iv["warnings"] == []
    assert iv["latency_fixed"] == [] and iv["accuracy_fixed"] == []
    assert {r["policy"] for r in data["life_within_dense"]} == set(rows)
    run = demo_run / "out" / "run"
    pooled = json.loads((run / "intervals.json").read_text())
    assert pooled["policies"]
    # pooled over the demo's bundle and its replica (issue 29): the members are named
    assert pooled["bundles"] == iv["bundles"] == 1 + REPLICAS_REDUCED
    names = [m["name"] for m in pooled["members"]]
    assert names == ["the demo's bundle", *(f"replica {k}" for k in range(1, len(names)))]
    assert f"and {REPLICAS_REDUCED} replica(s)" in pooled["sources"]
    replicas = json.loads((run / "replicas.json").read_text())
    assert len(replicas["replicas"]) == REPLICAS_REDUCED
    assert replicas["replicas"][0]["latency_table"]["file"] != str(
        Path(replicas["bundle"]) / "latency_table.json"
    )
    md = (demo_run / "out" / "report" / "report.md").read_text()
    assert f"cover {iv['bundles']} bundles" in md
    from lab.profiling.samples import read_latency_samples

    assert read_latency_samples(run / "profile.yaml")  # the runs beside the run's profile
    ev = json.loads((run / "evaluate.json").read_text())
    assert set(ev["per_sequence"]["correct"]) == {s["name"] for s in ev["sets"]}


def test_demo_draws_a_small_deadline_map(demo_run):
    """Issue 29: the demo runs a small deadline study (3 points reduced), the headline keeps
    its points with their intervals and the summary, the report shows it."""
    data = json.loads((demo_run / "stdout.txt").read_text())
    study = json.loads((demo_run / "out" / "run" / "deadlines.json").read_text())
    m = data["deadline_map"]
    assert len(m["points"]) == len(study["points"]) == 3
    tops = [p["top_deadline_ms"] for p in m["points"]]
    assert tops == sorted(tops) and tops[0] < tops[-1]
    assert [p["anchor"] for p in m["points"]][:2] == ["scaled", "dense-top"]
    for p in m["points"]:
        ratio = p["gains"]["static-sparse"]["hours"]
        assert ratio["point"] > 0 and len(ratio["ci95"]) == 2
        assert set(p["policies"]["rt3"]["table"]) == set(p["deadlines_ms"])
    assert m["summary"]["sentences"] == study["summary"]["sentences"]
    md = (demo_run / "out" / "report" / "report.md").read_text()
    assert "## The deadline map" in md and m["summary"]["sentences"][0] in md


def test_a_failing_check_says_what_it_means(demo_run):
    """Every check evaluate makes is printed; a failing one says, on its line, what it
    means and what to do (never a bare FAIL)."""
    from lab.compression.evaluation import CHECK_ADVICE, check_line

    checks = json.loads((demo_run / "out" / "run" / "evaluate.json").read_text())["checks"]
    assert checks and set(checks) <= set(CHECK_ADVICE)
    err = (demo_run / "stderr.txt").read_text().splitlines()
    for name, ok in checks.items():
        line = check_line(name, ok)
        assert any(x.strip() == line for x in err), line
        if not ok:
            assert line.startswith(f"FAIL  {name.replace('_', ' ')}: ")
            assert CHECK_ADVICE[name] in line and "; " in CHECK_ADVICE[name]
    fails = [x for x in err if x.strip().startswith("FAIL")]
    assert all(": " in x and len(x) > 80 for x in fails), fails


def test_second_run_uses_the_cache(demo_run, monkeypatch):
    monkeypatch.setenv("RT3LAB_CACHE", str(demo_run / "cache"))
    lines: list[str] = []
    st = run_demo(plan(demo_run / "again", "rt3-paper", True), echo=lines.append)
    assert st.cached == dict.fromkeys(
        ("compress", "evaluate", "bench runtime", "host profile", "replicas", "deadline map"),
        True,
    )
    assert (demo_run / "again" / "report" / "report.html").is_file()
    assert any(x.strip().startswith(("PASS  ", "FAIL  ")) for x in lines)  # checks, cached too
    assert (demo_run / "again" / "bundle").is_symlink()


def test_fresh_cache_is_new_empty_and_removed(tmp_path, monkeypatch):
    from contracts.cache import cache_root

    monkeypatch.setenv("RT3LAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr("tempfile.tempdir", None)  # TMPDIR is read again
    with fresh_cache() as root:
        assert cache_root() == root and root.parent == tmp_path / "tmp"
        assert list(root.iterdir()) == []
        (root / "demo").mkdir()
    assert cache_root() == tmp_path / "cache"
    assert list((tmp_path / "tmp").iterdir()) == []


def test_fresh_is_documented(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--fresh" in out and "nothing cached is reused" in out


@pytest.mark.slow
def test_fresh_reuses_no_cache_and_leaves_nothing(demo_run, tmp_path):
    """``--fresh`` beside a warm cache: every step runs, the warm cache is untouched, the
    temporary cache is gone, and the bundle is kept in OUT."""
    cache = demo_run / "cache"
    before = sorted(p for p in cache.rglob("*") if p.name != "demo.lock")
    (tmp_path / "tmp").mkdir()
    out = tmp_path / "fresh"
    proc = demo_process(["--out", str(out), "--reduced", "--fresh", "--json"], cache,
                        TMPDIR=str(tmp_path / "tmp"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    json.loads(proc.stdout)
    assert "(cached)" not in proc.stderr
    assert sorted(p for p in cache.rglob("*") if p.name != "demo.lock") == before
    assert not [p for p in (tmp_path / "tmp").iterdir() if p.name.startswith("rt3lab-fresh")]
    assert not (out / "bundle").is_symlink() and (out / "bundle" / "bundle.json").is_file()
    commands = json.loads((out / "run" / "commands.json").read_text())
    assert f"--bundle {out / 'bundle'}" in commands["evaluate.json"]


@pytest.mark.slow
def test_two_demos_at_once_on_one_cache_both_finish(demo_run, tmp_path):
    """Two demos started together on one cache (a copy of the cold demo's, so that neither
    compresses: the lock, not the cold run, is what this checks; the default run's
    test_a_second_demo_waits_for_the_first shows the waiting one touches nothing): one waits
    for the other, both finish, each writes its report. Each demo writes to files, not
    pipes: a demo holding the lock must never block on a full pipe (64 KiB) that the test
    is not draining."""
    shutil.copytree(demo_run / "cache", tmp_path / "cache")
    env = {**os.environ, "RT3LAB_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    procs, logs = [], []
    try:
        for name in ("one", "two"):
            out = open(tmp_path / f"{name}.out", "w+")  # noqa: SIM115 (closed below)
            err = open(tmp_path / f"{name}.err", "w+")  # noqa: SIM115
            logs.append((out, err))
            procs.append(subprocess.Popen(
                [RT3LAB, "demo", "--reduced", "--out", str(tmp_path / name)],
                env=env, stdout=out, stderr=err, text=True,
            ))  # fmt: skip
        for p in procs:
            p.wait(timeout=1200)
    finally:
        for p in procs:  # never leave a demo running behind a failed test
            if p.poll() is None:
                p.kill()
                p.wait()
        for out, err in logs:
            out.close()
            err.close()
    outs = [((tmp_path / f"{n}.out").read_text(), (tmp_path / f"{n}.err").read_text())
            for n in ("one", "two")]  # fmt: skip
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-2000:]
    assert sum("waiting for another demo" in out for out, _ in outs) == 1
    assert all((tmp_path / n / "report" / "report.html").is_file() for n in ("one", "two"))


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

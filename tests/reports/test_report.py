"""rt3lab report on a run directory: HTML parses, images embedded, numbers match results."""

from __future__ import annotations

import json

import pytest
from fake_run import write_fake_run
from report_html import check_headline_against, parse_report, png_payloads

from lab.cli import main
from reports import RunDirError, build_report, load_run, reproduction_table


def test_html_report_embeds_every_figure_and_matches_results(fake_run, tmp_path):
    root, records = fake_run
    files = build_report(root, tmp_path / "out")
    parsed = parse_report(files.html)
    payloads = png_payloads(parsed)
    # soc/voltage, timeline, battery life, pareto, latency, energy, meter.
    assert len(payloads) == 7
    assert check_headline_against(parsed, records) == 2
    # Provenance once per section of figures, not under every figure.
    assert len(parsed.provenance) == 3  # the discharge, the latencies, the meter
    for prov in parsed.provenance:
        assert any(k in prov for k in ("measured", "published", "modelled")), prov
    assert not any("Numbers:" in c for c in parsed.captions)
    md = files.markdown.read_text()
    assert "| policy |" in md and "Reproduction of RT3's claims" in md
    assert all(p.is_file() and p.stat().st_size > 1000 for p in files.figures)


def test_reproduction_table_states_claim_figure_and_command(fake_run):
    root, records = fake_run
    table = reproduction_table(load_run(root))
    rows = {r.quantity.split(" (")[0]: r for r in table}
    by = {r["policy"]: r for r in records}
    gain = table[0]
    assert gain.quantity.endswith("(on-time inferences per charge)")

    def on_time(r):
        return r["inferences"] - (r["deadline_misses"] - r.get("dropped", 0))

    assert gain.value == pytest.approx(on_time(by["rt3"]) / on_time(by["dense-max"]))
    assert gain.claim == "> 4x" and gain.command.startswith("rt3lab simulate")
    assert "modelled" in gain.provenance and "published" in gain.provenance
    acc = rows["accuracy loss of rt3 vs dense"]
    expected = 100 * (by["dense-max"]["mean_accuracy"] - by["rt3"]["mean_accuracy"])
    assert acc.value == pytest.approx(expected)
    switch = rows["pattern-set switch time"]
    assert switch.value == 0.012 and switch.provenance.startswith("measured")
    assert switch.command == "rt3lab bench runtime --bundle B --json"


def test_without_bench_the_switch_row_falls_back_to_the_profile(tmp_path):
    root = tmp_path / "bare"
    write_fake_run(root, with_extras=False)
    rows = reproduction_table(load_run(root))
    assert rows[-1].value is None and "not available" in rows[-1].ours
    files = build_report(root, tmp_path / "out")
    # No profile and no meter: the latency and meter figures are left out, not faked.
    assert len(png_payloads(parse_report(files.html))) == 5


def test_cli_writes_report(fake_run, tmp_path, capsys):
    root, _ = fake_run
    with pytest.raises(SystemExit) as exc:
        main(["report", str(root), "--out", str(tmp_path / "r")])
    assert exc.value.code in (0, None)
    assert (tmp_path / "r" / "report.html").is_file()
    assert "report.html" in capsys.readouterr().out


def test_run_dir_with_no_results_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as exc:
        main(["report", str(tmp_path / "empty")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "no results.json" in err and str(tmp_path / "empty") in err


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("[]", "holds no results"),
        ("{not json", "not valid JSON"),
        (json.dumps([{"policy": "rt3", "inferences": 3}]), "no field 'battery_life_s'"),
        (
            json.dumps([{"policy": "rt3", "inferences": "x", "battery_life_s": 1}]),
            "inferences must be a number",
        ),
    ],
)
def test_malformed_results_name_the_file_and_field(tmp_path, content, needle):
    (tmp_path / "results.json").write_text(content)
    with pytest.raises(RunDirError, match=needle) as exc:
        load_run(tmp_path)
    assert "results.json" in str(exc.value)


def test_host_spread_and_measurement_flags_are_shown(fake_run, tmp_path):
    import yaml

    root, _ = fake_run
    prof = yaml.safe_load((root / "profile.yaml").read_text())
    prof["flags"] = [
        {
            "variant": "bp",
            "freq_khz": 1400000,
            "rule": "sparser-slower",
            "detail": "226 ms against dense 1 ms; still so after 2 re-measurement(s)",
        }
    ]
    (root / "profile.yaml").write_text(yaml.safe_dump(prof))  # fmt: skip
    parsed = parse_report(build_report(root, tmp_path / "out").html)
    host = dict((row[0], row[1]) for row in parsed.tables["host"][1:])
    assert host["CPU"] == "Fake CPU 9000" and host["cpufreq governor"] == "not set"
    assert host["load average (1, 5, 15 min)"] == "0.50, 0.40, 0.30"
    assert parsed.tables["spread"][1] == ["bp", "1.80", "1.70 - 1.90"]
    assert parsed.tables["flags"][1][:3] == ["bp", "1400000", "sparser-slower"]
    assert "1 measurement flag(s)" in parsed.verdict
    warnings = parsed.tables.get("warnings", [])
    assert len({row[0] for row in warnings[1:]}) == len(warnings[1:])  # each warning once

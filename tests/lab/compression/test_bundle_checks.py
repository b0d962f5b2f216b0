"""Issue 19, defect 7: ``evaluate`` re-scores instead of printing stored figures, and bundle
loading (``evaluate``, ``simulate --bundle``) refuses what a hand edit or damage could
break. Defect 9's bundle part: a binary bundle.json is one line naming the file.

Every test drives the real ``rt3lab`` entry point on a small real bundle.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from bundle_builder import LAYER, build_bundle
from cli_runner import rt3lab

from lab.compression.budget import TEST
from lab.compression.pipeline import load_lm_data
from lab.model import build_model
from lab.model.training import evaluate_lm


@pytest.fixture
def bundle(wiki_dir, tmp_path):
    """Recording what it scores, with rBP and BP+rPP kept: evaluate accepts it as it is."""
    return build_bundle(wiki_dir, tmp_path / "bundle", true_figures=True, baselines="kept")


@pytest.fixture
def fake_bundle(wiki_dir, tmp_path):
    """Recording 0.999 everywhere: what a re-score cannot reproduce."""
    return build_bundle(wiki_dir, tmp_path / "fake")


def _edit(root, edit):
    doc = json.loads((root / "bundle.json").read_text())
    edit(doc)
    (root / "bundle.json").write_text(json.dumps(doc))
    return root


def _refused(r, root):
    assert r.code == 2, r
    line = r.stderr.strip()
    assert "\n" not in line and "Traceback" not in line and str(root) in line, line
    return line


def test_evaluate_prints_measured_figures_not_the_stored_ones(fake_bundle, wiki_dir):
    bundle = fake_bundle
    r = rt3lab("evaluate", "--bundle", str(bundle), "--json", "--threads", "1", "--allow-mismatch")
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    rows = {s["name"]: s for s in doc["sets"]}
    # What the weights really score, computed here on the same split and token budget.
    data = load_lm_data(f"wikitext2:{wiki_dir}", TEST)
    from lab.runtime.bundle import Bundle

    b = Bundle.load(bundle)
    model = build_model("rt3-transformer", b.model["config"]).eval()
    model.load_state_dict(b.backbone)
    with torch.no_grad():
        model.get_submodule(LAYER).weight.mul_(b.sets["pp-1400mhz"].masks()[LAYER])
    want = evaluate_lm(model, data.test, TEST.seq_len, max_tokens=TEST.report_tokens, threads=1)
    assert rows["pp-1400mhz"]["accuracy"] == pytest.approx(want.accuracy, abs=1e-9)
    assert rows["pp-1400mhz"]["accuracy"] != 0.999 and rows["dense"]["accuracy"] != 0.999
    assert doc["scored_on"] == f"wikitext2:{wiki_dir}"
    assert {m.split(":")[0] for m in doc["mismatches"]} == {
        f"{where}.{key}"
        for where in ("reference.dense", "sets[0] (bp)", "sets[1] (pp-1400mhz)")
        for key in ("accuracy", "perplexity")
    }
    table = rt3lab("evaluate", "--bundle", str(bundle), "--threads", "1", "--allow-mismatch")
    assert table.code == 0 and "99.90" not in table.stdout and "re-scored" in table.stdout
    assert "not what bundle.json records" in table.stdout


def test_a_stored_figure_the_re_score_does_not_reproduce_is_exit_2_naming_it(fake_bundle):
    line = _refused(rt3lab("evaluate", "--bundle", str(fake_bundle), "--threads", "1"),
                    fake_bundle)  # fmt: skip
    assert "reference.dense.accuracy: bundle.json records 0.999, re-scored 0." in line
    assert "(and 5 more)" in line and "--allow-mismatch" in line


TAMPERED = 0.987654


def _tamper(doc):
    """Every stored accuracy set to one value, as a hand edit would."""
    doc["reference"]["dense"]["accuracy"] = TAMPERED
    for s in doc["sets"]:
        s["accuracy"] = TAMPERED
    doc["baselines"]["rbp"]["accuracy"] = TAMPERED
    doc["baselines"]["bp+rpp"]["sets"][0]["accuracy"] = TAMPERED


def test_a_tampered_bundle_is_refused_and_never_shown(bundle):
    """Issue 31: the comparisons printed 0.987654 as BP's accuracy and exited 0."""
    _edit(bundle, _tamper)
    line = _refused(rt3lab("evaluate", "--bundle", str(bundle), "--threads", "1"), bundle)
    assert f"reference.dense.accuracy: bundle.json records {TAMPERED}, re-scored" in line
    r = rt3lab("evaluate", "--bundle", str(bundle), "--threads", "1", "--json",
               "--allow-mismatch")  # fmt: skip
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert str(TAMPERED) not in json.dumps({k: doc[k] for k in ("sets", "comparisons")})
    fields = {m.split(":")[0] for m in doc["mismatches"]}
    assert {"baselines.rbp.accuracy", "baselines.bp+rpp.sets[0].accuracy"} <= fields


def test_an_untouched_bundle_shows_one_bp_accuracy_everywhere(bundle):
    r = rt3lab("evaluate", "--bundle", str(bundle), "--threads", "1", "--json")
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["mismatches"] == [] and doc["notes"] == []
    rows = {s["name"]: s for s in doc["sets"]}
    cmp = {c["method"]: c for c in doc["comparisons"]}
    assert cmp["BP"]["accuracy"] == rows["bp"]["accuracy"]
    assert cmp["RL pp-1400mhz"]["accuracy"] == rows["pp-1400mhz"]["accuracy"]
    assert all(c["baseline_rescored"] for c in doc["comparisons"])
    assert {"bp_beats_rbp", "rl_beats_bp_rpp"} <= set(doc["checks"])
    # The baselines' figures are their kept masks on their own weights, scored now.
    stored = json.loads((bundle / "bundle.json").read_text())["baselines"]
    assert cmp["BP"]["baseline_accuracy"] == pytest.approx(stored["rbp"]["accuracy"], abs=1e-12)


def test_a_bundle_from_before_baselines_were_kept_leaves_them_out_of_checks(wiki_dir, tmp_path):
    old = build_bundle(wiki_dir, tmp_path / "old", true_figures=True, baselines="recorded")
    r = rt3lab("evaluate", "--bundle", str(old), "--threads", "1", "--json")
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [c["baseline_rescored"] for c in doc["comparisons"]] == [False, False]
    assert not {"bp_beats_rbp", "rl_beats_bp_rpp"} & set(doc["checks"])
    assert len(doc["notes"]) == 2 and all("left out of the checks" in n for n in doc["notes"])
    table = rt3lab("evaluate", "--bundle", str(old), "--threads", "1")
    assert "rBP *" in table.stdout and "note: rBP" in table.stdout


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda d: d["baselines"]["kept"]["rbp"].update(weights="../../etc/passwd"),
         "baselines.kept.rbp.weights: '../../etc/passwd' is not a file under baselines/"),
        (lambda d: d["baselines"]["kept"]["checksums"].update(
            {"baselines/rbp.safetensors": "0" * 64}), "does not match"),
        (lambda d: d["baselines"]["kept"].update(checksums=[]), "checksums table"),
    ],
)  # fmt: skip
def test_a_bad_kept_baseline_is_one_line_exit_2(bundle, edit, needle):
    _edit(bundle, edit)
    assert needle in _refused(rt3lab("evaluate", "--bundle", str(bundle), "--threads", "1"), bundle)


def test_evaluate_refuses_when_the_data_is_gone(bundle, wiki_dir, tmp_path):
    moved = tmp_path / "elsewhere"
    shutil.move(wiki_dir, moved)
    line = _refused(rt3lab("evaluate", "--bundle", str(bundle)), bundle)
    assert "cannot re-score" in line and "give --data" in line
    r = rt3lab("evaluate", "--bundle", str(bundle), "--data", f"wikitext2:{moved}", "--json")
    assert r.code == 0, r.stderr


def test_evaluate_refuses_a_bundle_without_data_or_budget(bundle):
    _edit(bundle, lambda d: d["provenance"].pop("budget"))
    assert "provenance.budget" in _refused(rt3lab("evaluate", "--bundle", str(bundle)), bundle)


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda d: d["model"].update(kind="gpt-17"), "model.kind is 'gpt-17'"),
        (lambda d: d["model"]["config"].update(layers=-2), "model.config"),
        (lambda d: d["model"]["config"].update(emb=32), "model.config builds tensor"),
        (lambda d: d.update(sets=[]), "field sets is empty"),
        (lambda d: d["sets"][1].update(name="../../evil"), "sets[1].name '../../evil'"),
        (lambda d: d["sets"].append(dict(d["sets"][1])), "sets[2].name 'pp-1400mhz' appears"),
    ],
)
def test_evaluate_refuses_a_bad_bundle_naming_the_field(bundle, edit, needle):
    _edit(bundle, edit)
    assert needle in _refused(rt3lab("evaluate", "--bundle", str(bundle)), bundle)


def test_damaged_or_missing_weight_files_are_refused(bundle):
    f = bundle / "sets" / "pp-1400mhz.safetensors"
    raw = bytearray(f.read_bytes())
    raw[-1] ^= 0x01  # still a readable safetensors file: only the checksum can tell
    f.write_bytes(bytes(raw))
    line = _refused(rt3lab("evaluate", "--bundle", str(bundle)), bundle)
    assert "pp-1400mhz.safetensors: SHA-256" in line
    sim = rt3lab("simulate", "--bundle", str(bundle), "--capacity-mah", "0.2")
    assert "pp-1400mhz.safetensors: SHA-256" in _refused(sim, bundle)
    (bundle / "backbone.safetensors").unlink()
    sim = rt3lab("simulate", "--bundle", str(bundle), "--capacity-mah", "0.2")
    assert "backbone.safetensors: not found" in _refused(sim, bundle)


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda d: d["sets"][1].update(freq_khz=123), "sets[1].freq_khz: 123 is not a level"),
        (lambda d: d["sets"][1].update(name="../../evil"), "sets[1].name '../../evil'"),
        (lambda d: d["sets"].append(dict(d["sets"][0])), "sets[2].name 'bp' appears twice"),
    ],
)
def test_simulate_bundle_refuses_bad_sets(bundle, edit, needle):
    _edit(bundle, edit)
    r = rt3lab("simulate", "--bundle", str(bundle), "--capacity-mah", "0.2")
    assert needle in _refused(r, bundle)


@pytest.mark.parametrize("command", ["evaluate", "simulate"])
def test_a_set_file_name_longer_than_a_file_system_takes_is_refused_naming_it(bundle, command):
    """Opening it would fail with ENAMETOOLONG (a fuzz run found exit 1, "failed: OSError")."""
    _edit(bundle, lambda d: d["sets"][1].update(file="x" * 300))
    extra = ("--capacity-mah", "0.2") if command == "simulate" else ()
    line = _refused(rt3lab(command, "--bundle", str(bundle), *extra), bundle)
    assert "sets[1].file: a file name of 300 bytes, expected at most 255" in line


def test_simulate_accepts_the_good_bundle(bundle):
    r = rt3lab("simulate", "--bundle", str(bundle), "--capacity-mah", "0.2", "--json")
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout)["inferences"] > 0


def test_a_bundle_without_checksums_loads_with_a_one_line_warning(bundle):
    import subprocess
    import sys
    from pathlib import Path

    _edit(bundle, lambda d: d.pop("checksums"))
    # A subprocess: pytest would capture the warning before the CLI's formatter sees it.
    exe = Path(sys.executable).with_name("rt3lab")
    r = subprocess.run(
        [str(exe), "evaluate", "--bundle", str(bundle), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    json.loads(r.stdout)  # the warning goes to stderr; stdout stays JSON
    warning = [line for line in r.stderr.splitlines() if line]
    assert len(warning) == 1 and warning[0].startswith("rt3lab: warning: ")
    assert "no checksums" in warning[0] and "re-run `rt3lab compress`" in warning[0]


@pytest.mark.parametrize("command", ["evaluate", "simulate"])
def test_binary_bundle_json_is_one_line_naming_the_file(bundle, command):
    (bundle / "bundle.json").write_bytes(b'{"format": "\xff\xfe"}')
    line = _refused(rt3lab(command, "--bundle", str(bundle)), bundle)
    assert f"{bundle / 'bundle.json'}: not UTF-8 JSON (byte 0xff at offset 12)" in line

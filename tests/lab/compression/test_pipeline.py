"""compress end to end on a tiny corpus: the bundle, its invariants, resume, bad input."""

import json
import shutil

import pytest
import torch

from device_profiles import load_profile
from lab.cli import main
from lab.compression.block_pruning import block_column_of
from lab.compression.budget import TEST
from lab.compression.evaluation import evaluate_bundle
from lab.compression.options import CompressOptions
from lab.compression.pipeline import compress, load_lm_data
from lab.runtime.bundle import Bundle, BundleError


class Interrupt:
    """A progress sink that interrupts the run like Ctrl-C after the n-th search episode."""

    def __init__(self, after: int):
        self.after, self.stage_name, self.count = after, "", 0

    def stage(self, name, total):
        self.stage_name = name

    def advance(self, n=1, note=""):
        if self.stage_name.startswith("RL search"):
            self.count += 1
            if self.count == self.after:
                raise KeyboardInterrupt


def _run(wiki_dir, out, reporter=None, **kw):
    # RT3's op-count estimator keeps these runs deterministic across runs (a measured table
    # differs run to run, and the test model's unpruned rest makes scaled deadlines
    # infeasible); tests/lab/compression/test_latency_table.py covers the measured default
    kw.setdefault("estimator", "op-count")
    data = load_lm_data(f"wikitext2:{wiki_dir}", TEST)
    opts = CompressOptions("rt3-paper", out, TEST, seed=1, threads=1, **kw)
    return compress(data, load_profile("rt3-paper"), opts, reporter)


def test_bundle_from_compress(wiki_dir, tmp_path):
    out = _run(wiki_dir, tmp_path / "bundle")
    b = Bundle.load(out)
    pp = [e for e in b.entries.values() if e.name != "bp"]
    assert len(pp) == 3
    assert [e.freq_khz for e in pp] == [1400000, 1000000, 800000]
    assert all(e.family == "block-column" for e in pp)
    bp = b.sets["bp"].masks()
    for name, ps in b.sets.items():
        for layer, mask in ps.masks().items():
            assert not bool((mask & ~bp[layer]).any()), (name, layer)  # PP stacks on BP
            assert block_column_of(mask, TEST_BLOCK(b))
    for layer, mask in bp.items():  # BP-pruned weights are really zero in the backbone
        assert bool((b.backbone[f"{layer}.weight"][~mask] == 0).all())
    p = b.provenance
    assert p["data"].startswith("wikitext2:") and p["seed"] == 1 and p["episodes"] == 3
    combos = p["search"]["level_combinations"]
    assert 0 < combos["allowed"] <= combos["of"] == 120
    assert {"torch", "rt3lab", "python"} <= set(p["versions"])
    ev = evaluate_bundle(out)
    assert {"at_least_3_sets", "bp_beats_rbp", "rl_beats_bp_rpp"} <= set(ev.checks)
    # RL sets and BP+rPP sets are compared at (nearly) equal sparsity
    for cmp in ev.comparisons:
        assert abs(cmp.sparsity - cmp.baseline_sparsity) < 0.02
    # the dense model was cached: a second run does not retrain it
    assert not p["dense_cache"]["cached"]
    again = Bundle.load(_run(wiki_dir, tmp_path / "again"))
    assert again.provenance["dense_cache"]["cached"]
    # the same command on a finished bundle leaves it as it is (the demo's second run)
    before = (out / "bundle.json").read_text()
    _run(wiki_dir, out)
    assert (out / "bundle.json").read_text() == before
    # ... but other options redo the work
    assert (
        Bundle.load(_run(wiki_dir, out, deadlines="profile")).provenance["deadlines"]["mode"]
        == "profile"
    )


def TEST_BLOCK(bundle):
    return bundle.provenance["bp_config"]["block_rows"]


@pytest.mark.slow
def test_interrupted_compress_resumes_to_the_same_bundle(wiki_dir, tmp_path):
    full = Bundle.load(_run(wiki_dir, tmp_path / "full"))
    with pytest.raises(KeyboardInterrupt):
        _run(wiki_dir, tmp_path / "part", Interrupt(after=2))
    state = json.loads((tmp_path / "part" / "search" / "search.json").read_text())
    assert state["episodes_done"] == 2
    resumed = Bundle.load(_run(wiki_dir, tmp_path / "part"))
    assert resumed.provenance["search"] == full.provenance["search"]
    for name in full.sets:
        assert resumed.sets[name] == full.sets[name]
        assert resumed.entries[name].accuracy == full.entries[name].accuracy
    for k, v in full.backbone.items():
        assert torch.equal(v, resumed.backbone[k])


def test_elementwise_family_is_marked_not_compacting(wiki_dir, tmp_path, capsys):
    out = _run(wiki_dir, tmp_path / "elem", family="elementwise")
    ev = evaluate_bundle(out)
    rows = {r.name: r for r in ev.rows}
    assert rows["pp-1400mhz"].family == "elementwise" and not rows["pp-1400mhz"].compacts
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "--bundle", str(out)])
    assert exc.value.code in (0, None)
    assert "do not compact" in capsys.readouterr().out


def test_fitted_candidates_run_end_to_end(wiki_dir, tmp_path):
    out = _run(wiki_dir, tmp_path / "fit", candidates="fitted")
    b = Bundle.load(out)
    assert b.provenance["candidates"] == "fitted"
    sp = [b.entries[f"pp-{f}mhz"].sparsity for f in (1400, 1000, 800)]
    assert sp == sorted(sp)


def test_evaluate_json_and_corrupt_bundle(wiki_dir, tmp_path, capsys):
    out = _run(wiki_dir, tmp_path / "b")
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "--bundle", str(out), "--json"])
    assert exc.value.code in (0, None)
    doc = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in doc["sets"]][:2] == ["dense", "pp-1400mhz"]
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    (broken / "sets" / "pp-1000mhz.safetensors").write_bytes(b"garbage")
    with pytest.raises(BundleError, match="pp-1000mhz"):
        evaluate_bundle(broken)
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "--bundle", str(broken)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "pp-1000mhz" in err and "Traceback" not in err


def _cli_error(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    err = capsys.readouterr().err
    assert exc.value.code == 2, err
    assert "Traceback" not in err
    return err


def test_bad_input_gets_one_clear_line(tmp_path, capsys):
    out = str(tmp_path / "o")
    err = _cli_error(
        ["compress", "--quick", "--out", out, "--data", f"wikitext2:{tmp_path}/nope"], capsys
    )
    assert "nope" in err
    err = _cli_error(["compress", "--quick", "--out", out, "--data", "glue:SST-2:/x"], capsys)
    assert "GLUE" in err
    err = _cli_error(["compress", "--quick", "--out", out, "--profile", "no-such-board"], capsys)
    assert "no-such-board" in err
    err = _cli_error(["compress", "--quick", "--out", out, "--candidates", "kmeans"], capsys)
    assert "kmeans" in err and "fitted" in err
    bad = tmp_path / "bp.yaml"
    bad.write_text("layers:\n  decoder: 1.2\n")
    err = _cli_error(["compress", "--quick", "--out", out, "--bp-config", str(bad)], capsys)
    assert "decoder" in err and "[0, 1)" in err
    err = _cli_error(["evaluate", "--bundle", str(tmp_path / "missing")], capsys)
    assert "bundle.json" in err


def test_profile_without_timing_constraints(tmp_path, capsys):
    import yaml

    from device_profiles.loader import resolve_profile_path

    doc = yaml.safe_load(resolve_profile_path("rt3-paper").read_text())
    doc["workload"]["timing_constraints"] = []
    doc["name"] = "no-deadlines"
    p = tmp_path / "no-deadlines.yaml"
    p.write_text(yaml.safe_dump(doc))
    err = _cli_error(
        ["compress", "--quick", "--out", str(tmp_path / "o"), "--profile", str(p)], capsys
    )
    assert "timing constraint" in err


def test_impossible_deadline_is_named_before_the_search(wiki_dir, tmp_path):
    """No level of any pattern set can meet a deadline: an error naming the level, the
    estimate and the constraint, and no search episode is spent on it."""
    import yaml

    from device_profiles import load_profile as load
    from device_profiles.loader import resolve_profile_path
    from lab.compression.sparsifier import CompressionError

    doc = yaml.safe_load(resolve_profile_path("rt3-paper").read_text())
    for tc in doc["workload"]["timing_constraints"]:
        if tc["freq_khz"] == 800000:
            tc["deadline_ms"] = 1e-6
    p = tmp_path / "tight.yaml"
    p.write_text(yaml.safe_dump(doc))
    data = load_lm_data(f"wikitext2:{wiki_dir}", TEST)
    opts = CompressOptions(
        "tight", tmp_path / "o", TEST, seed=1, threads=1, deadlines="profile", estimator="measured"
    )
    with pytest.raises(CompressionError, match=r"impossible deadline: at 800000 kHz .* over"):
        compress(data, load(p), opts)
    assert not (tmp_path / "o" / "search" / "search.json").exists()


def test_derived_deadlines_no_set_meets_are_searched_whole_and_recorded(wiki_dir, tmp_path):
    """Deadlines derived from the model's own timing (dense-top) that no level combination
    meets by the estimate: every combination is searched, the bundle is written and says
    so (compress refuses only deadlines the user gave, above)."""
    import yaml

    from device_profiles import load_profile as load
    from device_profiles.loader import resolve_profile_path
    from lab.runtime.bundle import Bundle

    doc = yaml.safe_load(resolve_profile_path("rt3-paper").read_text())
    for tc in doc["workload"]["timing_constraints"]:
        if tc["freq_khz"] == 800000:
            tc["deadline_ms"] = 1e-6  # dense-top keeps the profile's ratios: 800 MHz impossible
    p = tmp_path / "tight.yaml"
    p.write_text(yaml.safe_dump(doc))
    data = load_lm_data(f"wikitext2:{wiki_dir}", TEST)
    opts = CompressOptions(
        "tight", tmp_path / "o", TEST, seed=1, threads=1, deadlines="dense-top",
        estimator="op-count",
    )  # fmt: skip
    b = Bundle.load(compress(data, load(p), opts))
    rec = b.provenance["search"]["level_combinations"]
    assert rec["allowed"] == 0 and rec["searched"] == rec["of"] > 0
    assert rec["note"].startswith("impossible deadline: at 800000 kHz")


def test_malformed_glue_tsv_is_named(tmp_path, capsys):
    d = tmp_path / "SST-2"
    d.mkdir()
    (d / "train.tsv").write_text("sentence\tlabel\na fine film\t1\nbroken row without label\n")
    (d / "dev.tsv").write_text("sentence\tlabel\nok\t0\n")
    out = str(tmp_path / "o")
    args = ["compress", "--quick", "--out", out, "--model", "hf:/none", "--data", f"glue:SST-2:{d}"]
    err = _cli_error(args, capsys)
    assert "train.tsv" in err
    # RT3's language model cannot take a classification task, nor a classifier a corpus
    err = _cli_error(["compress", "--quick", "--out", out, "--data", f"glue:SST-2:{d}"], capsys)
    assert "language model" in err
    err = _cli_error(["compress", "--quick", "--out", out, "--model", f"hf:{d}"], capsys)
    assert "glue:TASK:DIR" in err


def test_exclusive_sets_keep_their_size_and_share_fewer_weights(wiki_dir, tmp_path):
    from lab.compression.compressor import Compressor
    from lab.compression.options import SilentReporter
    from lab.compression.search.controller import Child
    from lab.compression.tasks import LMTask

    task = LMTask(load_lm_data(f"wikitext2:{wiki_dir}", TEST), TEST)
    torch.manual_seed(0)
    model = task.build_model()
    # every block ranks its columns alike, so the plain sets are nested
    weights = {
        n: (1.0 + torch.arange(m.weight.shape[1]) % 32).expand_as(m.weight).clone()
        for n, m in task.prunable(model).items()
    }
    bp = {n: torch.ones_like(w, dtype=torch.bool) for n, w in weights.items()}
    sets = {}
    for discount in (0.0, 1.0):
        opts = CompressOptions("rt3-paper", tmp_path, TEST, exclusive=discount, threads=1)
        c = Compressor(task, load_profile("rt3-paper"), opts, SilentReporter())
        child = Child((2, 4, 5), tuple(tuple((0, 1, 2, 3) for _ in weights) for _ in range(3)))
        sets[discount] = c.patterns.set_masks(weights, bp, c.patterns.candidates(weights), child)
    plain, excl = sets[0.0], sets[1.0]
    for name in weights:
        assert torch.equal(plain[0][name], excl[0][name])  # the densest set is unchanged
    for s in (1, 2):
        for name in weights:
            assert int(excl[s][name].sum()) == int(plain[s][name].sum())  # same size
    # the middle set (16 columns per block) takes the 8 the densest set (24) leaves and only
    # 8 of the densest set's; the nested plain set takes 16 of them
    shared = [sum(int((m[1][n] & m[0][n]).sum()) for n in weights) for m in (plain, excl)]
    assert shared[1] * 2 == shared[0]


def test_the_dense_cache_key_follows_the_training_code(tmp_path):
    """A dense model trained by other code is not reused: the key hashes the training code."""
    from lab.compression.cache import dense_training_sources, source_fingerprint

    sources = dense_training_sources()
    assert {p.name for p in sources} == {"training.py", "tasks.py", "model"}
    assert all(p.exists() for p in sources)
    f = tmp_path / "training.py"
    f.write_text("steps = 1\n")
    before = source_fingerprint([f, *sources])
    f.write_text("steps = 2\n")
    assert source_fingerprint([f, *sources]) != before

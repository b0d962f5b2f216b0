"""One seed, one bundle: compress twice from cold caches and compare bit for bit; under
measured latency the bundle records the table its choices were made on, and that table
(--latency-table) repeats them."""

import itertools
import json

import pytest
import torch
from safetensors.torch import load_file

from device_profiles import load_profile
from lab.compression.budget import TEST
from lab.compression.compressor import Compressor
from lab.compression.dense import train_dense
from lab.compression.latency.table import TABLE_FILE, LatencyTable, LatencyTableError
from lab.compression.options import CompressOptions, SilentReporter
from lab.compression.pipeline import compress, load_lm_data
from lab.compression.search.feasible import FEASIBLE_MARGIN
from lab.compression.tasks import LMTask
from lab.runtime.bundle import Bundle

# what differs between two runs of one command by design: when and how long
RUN_FIELDS = ("created", "wall_time_s")


def _cold(wiki_dir, tmp_path, monkeypatch, name, **kw):
    """compress on the test budget, seed 1, from an empty cache of its own."""
    monkeypatch.setenv("RT3LAB_CACHE", str(tmp_path / f"cache-{name}"))
    data = load_lm_data(f"wikitext2:{wiki_dir}", TEST)
    opts = CompressOptions("rt3-paper", tmp_path / name, TEST, seed=1, **kw)
    return Bundle.load(compress(data, load_profile("rt3-paper"), opts))


def _without_checksums(baselines: dict) -> dict:
    """The baselines' records without the kept files' SHA-256s: a set file's bytes hold its
    metadata in the order safetensors' hash map gives it, which differs between writes."""
    kept = {k: v for k, v in baselines.get("kept", {}).items() if k != "checksums"}
    return {**baselines, "kept": kept}


def _same_kept(a: Bundle, b: Bundle) -> None:
    """The kept baselines' weights and masks, bit for bit."""
    from lab.compression.kept_baselines import read_kept

    ka, kb = read_kept(a.path, a.baselines), read_kept(b.path, b.baselines)
    assert ka.keys() == kb.keys()
    for name in ka:
        wa, wb = ka[name].weights, kb[name].weights
        assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa), name
        for s in ka[name].masks:
            ma, mb = ka[name].masks[s], kb[name].masks[s]
            assert all(torch.equal(ma[k], mb[k]) for k in ma), (name, s)


def _same_bundle(a: Bundle, b: Bundle) -> None:
    """Bit-identical weights and masks, identical figures, search and provenance."""
    for file in ("backbone.safetensors", "dense.safetensors"):
        ta, tb = load_file(str(a.path / file)), load_file(str(b.path / file))
        assert ta.keys() == tb.keys()
        for k in ta:
            assert torch.equal(ta[k], tb[k]), (file, k)
    assert a.sets.keys() == b.sets.keys()
    for name in a.sets:
        ma, mb = a.sets[name].masks(), b.sets[name].masks()
        assert all(torch.equal(ma[k], mb[k]) for k in ma), name
    figures = {n: (e.accuracy, e.perplexity) for n, e in a.entries.items()}
    assert figures == {n: (e.accuracy, e.perplexity) for n, e in b.entries.items()}
    assert a.reference == b.reference
    assert _without_checksums(a.baselines) == _without_checksums(b.baselines)
    _same_kept(a, b)
    log_a, log_b = (json.loads((x.path / "search_log.json").read_text()) for x in (a, b))
    assert log_a == log_b

    def prov(x: Bundle) -> dict:
        p = {k: v for k, v in x.provenance.items() if k not in RUN_FIELDS}
        if p.get("latency_table"):  # where the table came from differs (and so the options
            # the run is keyed by); its values do not
            del p["run_key"]
            p["latency_table"] = {k: v for k, v in p["latency_table"].items() if k != "source"}
            p["reproducibility"] = {**p["reproducibility"], "latency": None}
        return p

    assert prov(a) == prov(b)


@pytest.mark.parametrize(
    "threads",
    [1, pytest.param(2, marks=pytest.mark.slow)],  # 2: reductions split (slow when shared)
)
def test_one_seed_gives_the_same_bundle_from_cold_caches(wiki_dir, tmp_path, monkeypatch, threads):
    """Op-count latency does not depend on the machine: two cold runs with one seed give
    bit-identical BP, backbone and dense weights, masks, accuracies and search; the bundle
    records the thread count and the BP model's digest."""
    a = _cold(wiki_dir, tmp_path, monkeypatch, "a", estimator="op-count", threads=threads)
    b = _cold(wiki_dir, tmp_path, monkeypatch, "b", estimator="op-count", threads=threads)
    assert not a.provenance["dense_cache"]["cached"] and not b.provenance["dense_cache"]["cached"]
    _same_bundle(a, b)
    rep = a.provenance["reproducibility"]
    assert (rep["threads"], rep["threads_from"]) == (threads, "--threads")
    assert rep["latency"].startswith("op-count") and len(rep["bp_weights_sha256"]) == 64


def test_measured_choices_record_their_table_and_repeat_with_it(wiki_dir, tmp_path, monkeypatch):
    """Under measured latency the bundle holds the table's values, the deadlines' anchor
    estimate and every level's estimate the level combinations were barred on; a cold
    rerun given that table (--latency-table) makes the same choices and the same bundle."""
    a = _cold(wiki_dir, tmp_path, monkeypatch, "a", threads=1)
    p = a.provenance
    table = LatencyTable.load(a.path / TABLE_FILE, threads=1)
    lt = p["latency_table"]
    assert lt["source"].startswith("measured by this run")
    assert (lt["dense_ms"], lt["layers"]) == (table.dense_ms, table.to_dict()["layers"])
    dl = p["deadlines"]
    top = table.latency_ms({}, 1400000)  # dense-top: the unpruned model's estimate
    assert dl["anchor"] == {"model": "dense", "estimate_ms": top}
    assert dl["deadline_ms"]["1400000"] == pytest.approx(top, rel=1e-12)
    assert dl["deadline_ms"]["800000"] == pytest.approx(top * 94 / 115)
    # the level combinations allowed follow from the recorded estimates and deadlines
    lc = p["search"]["level_combinations"]
    est = [list(lv.values()) for lv in lc["estimate_ms"].values()]
    limits = [d * FEASIBLE_MARGIN for d in dl["deadline_ms"].values()]
    allowed = [
        i
        for i, combo in enumerate(itertools.combinations(range(len(est)), 3))
        if all(est[combo[s]][s] <= limits[s] for s in range(3))
    ]
    assert lc["allowed_index"] == allowed and lc["allowed"] == len(allowed)

    b = _cold(wiki_dir, tmp_path, monkeypatch, "b", threads=1, latency_table=a.path)
    assert b.provenance["latency_table"]["source"].startswith(f"given: {a.path}")
    _same_bundle(a, b)


def test_a_table_that_does_not_fit_is_refused_by_name(wiki_dir, tmp_path):
    """A recorded table whose layers sit at other densities (another seed's BP and
    candidates) cannot stand for this run's measurement, nor can a missing one, nor a
    table with a machine-independent estimator: each refused, naming the option or file."""
    from lab.compression.latency.table import host_identity
    from lab.compression.sparsifier import CompressionError

    data = load_lm_data(f"wikitext2:{wiki_dir}", TEST)

    def compressor(table, estimator="measured"):
        opts = CompressOptions(
            "rt3-paper", tmp_path / "o", TEST, seed=1, threads=1, estimator=estimator,
            latency_table=table,
        )  # fmt: skip
        return Compressor(LMTask(data, TEST), load_profile("rt3-paper"), opts, SilentReporter())

    c = compressor(None)
    model = c.task.build_model()
    names = list(c.task.prunable(model))
    layers = {n: [(0.5, 0.5), (1.0, 1.0)] for n in names}
    other = LatencyTable(host_identity(), 1, "2026-01-01T00:00:00Z", 10**6, 16, 1.0, layers)
    path = other.save(tmp_path / "other.json")
    weights = c.weights(model)
    bp = {n: torch.ones_like(w, dtype=torch.bool) for n, w in weights.items()}
    cands = c.patterns.candidates(weights)
    with pytest.raises(LatencyTableError, match=rf"other.json: .*layer '{names[0]}' at densities"):
        compressor(path).measure_latency(model, weights, bp, cands, tmp_path / "out")
    with pytest.raises(LatencyTableError, match=r"--latency-table .*nope: no such file"):
        compressor(tmp_path / "nope").measure_latency(model, weights, bp, cands, tmp_path / "out")
    with pytest.raises(CompressionError, match=r"applies to --estimator measured"):
        compressor(path, estimator="op-count")


def test_a_missing_table_is_one_line_before_any_data_is_read(tmp_path, capsys):
    from lab.cli import main

    nope = tmp_path / "nope"
    with pytest.raises(SystemExit) as exc:
        main(["compress", "--quick", "--out", str(tmp_path / "o"), "--latency-table", str(nope)])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "Traceback" not in err
    squeeze = "".join  # the terminal may wrap the line
    assert squeeze(f"--latency-table {nope}: no such file".split()) in squeeze(err.split())


def test_the_dense_cache_is_keyed_by_the_thread_count(wiki_dir, tmp_path):
    """One and two threads train other bits, so a dense model trained at one count is not
    served to a run at the other."""
    data = load_lm_data(f"wikitext2:{wiki_dir}", TEST)
    cached = []
    for threads in (1, 2, 1):
        opts = CompressOptions("rt3-paper", tmp_path / "o", TEST, seed=1, threads=threads)
        c = Compressor(LMTask(data, TEST), load_profile("rt3-paper"), opts, SilentReporter())
        cached.append(train_dense(c, c.task.build_model())["cached"])
    assert cached == [False, False, True]

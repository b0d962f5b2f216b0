"""``ReconfigurableModel.serving_call``: the bound engine call a serving loop makes, equal to
the general call, and what the latency table, ``evaluate`` and ``profile`` all time.

The measurement paths are checked at the engine boundary, not by timing: the engine library
is wrapped so that every C forward pass is counted, and each one must come from inside a
callable ``serving_call`` returned (one code object for all three paths)."""

from __future__ import annotations

import pytest
import torch

from lab.runtime import engine as E
from lab.runtime.bundle import Bundle
from lab.runtime.reconfigurable import ReconfigurableModel, module_from_bundle
from lab.runtime.synthetic import synthetic_bundle

pytestmark = pytest.mark.skipif(E.library() is None, reason="no C compiler for the engine")

SMALL = {"vocab_size": 150, "emb": 32, "ff": 24, "layers": 1, "heads": 2}


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    return synthetic_bundle(
        tmp_path_factory.mktemp("b") / "b", SMALL, {"bp": 0.6, "p30": 0.3}, block_cols=4
    )


@pytest.fixture(scope="module")
def rm(bundle_dir):
    return ReconfigurableModel.from_bundle(Bundle.load(bundle_dir), executor="engine")


@pytest.mark.parametrize("batch", [1, 3])
def test_serving_call_equals_the_general_call_and_follows_switches(rm, batch):
    tokens = torch.randint(0, SMALL["vocab_size"], (batch, 9), generator=torch.Generator())
    call = rm.serving_call(tokens)
    for name in (None, "p30", "bp"):
        rm.switch(name)  # after the call was made: it runs the set active when it runs
        got = call()
        assert got.shape == (batch, 9, SMALL["vocab_size"])
        assert torch.equal(got, rm(tokens)), name
        assert call() is got is call.logits  # one buffer, overwritten
    call.tokens[0, 0] = (int(call.tokens[0, 0]) + 1) % SMALL["vocab_size"]  # new tokens, in place
    assert torch.equal(call(), rm(torch.from_numpy(call.tokens.copy())))


def test_serving_call_on_the_torch_reference_is_its_forward(bundle_dir):
    ref = ReconfigurableModel.from_bundle(Bundle.load(bundle_dir), executor="torch")
    tokens = torch.randint(0, SMALL["vocab_size"], (1, 7), generator=torch.Generator())
    ref.switch("p30")
    assert torch.equal(ref.serving_call(tokens)(), ref(tokens))


def test_serving_call_refuses_what_the_engine_cannot_take(rm):
    from lab.runtime.reconfigurable import ReconfigurationError

    with pytest.raises(ReconfigurationError, match=r"\(batch, seq\)"):
        rm.serving_call(torch.zeros(4, dtype=torch.int64))
    with pytest.raises(ReconfigurationError, match="one"):
        rm.serving_call(torch.zeros(1, 4, dtype=torch.int64), mask=None)


class CountingLibrary:
    """The engine library with its forward pass counted: inside a serving callable or not."""

    def __init__(self, lib):
        self._lib = lib
        self.inside = 0  # > 0 while a callable serving_call made is running
        self.counts = {"inside": 0, "outside": 0}

    def __getattr__(self, name):
        return getattr(self._lib, name)

    @property
    def rt3e_forward(self):
        real = self._lib.rt3e_forward

        def forward(*args):
            self.counts["inside" if self.inside else "outside"] += 1
            return real(*args)

        return forward


@pytest.fixture
def spied(monkeypatch):
    """Every C forward counted; every callable serving_call returns recorded (its code)."""
    lib = CountingLibrary(E.library())
    monkeypatch.setattr(E, "library", lambda: lib)
    made = []
    real = ReconfigurableModel.serving_call

    def serving_call(self, *args, **kwargs):
        fn = real(self, *args, **kwargs)
        made.append(fn.__code__)

        def spy():
            lib.inside += 1
            try:
                return fn()
            finally:
                lib.inside -= 1

        spy.__dict__.update(fn.__dict__)  # its attributes (the tokens it reads)
        return spy

    monkeypatch.setattr(ReconfigurableModel, "serving_call", serving_call)
    return lib, made


def test_table_evaluate_and_profile_time_the_same_serving_call(bundle_dir, spied, tmp_path):
    """The latency table, evaluate's measurement and profile's workload: every forward pass
    they run comes from a serving callable, all of one code object."""
    from lab.compression.latency.check import bundle_latencies
    from lab.compression.latency.table import TABLE_FILE, measure_table_and_sets
    from lab.compression.latency.timing import TimingSetup
    from lab.profiling.session import host_profile_from_bundle

    lib, made = spied
    b = Bundle.load(bundle_dir)
    masks = {n: ps.masks() for n, ps in b.sets.items()}
    setup = TimingSetup(32, 4, threads=1, seq_len=35, rounds=2, per_round=1)
    codes = {}
    table, _ = measure_table_and_sets(
        module_from_bundle(b), list(masks.values()), masks, setup, runtime="engine"
    )
    codes["table"] = set(made)
    table.save(bundle_dir / TABLE_FILE)
    made.clear()
    before = dict(lib.counts)
    try:
        got = bundle_latencies(Bundle.load(bundle_dir))
    finally:
        (bundle_dir / TABLE_FILE).unlink()
    assert set(got) == {"dense", "bp", "p30"}
    for _est, _fastest, median, bound, (lo, hi) in got.values():
        assert median > 0 and bound > 0 and lo <= median / bound <= hi
    codes["evaluate"] = set(made)
    # beside each serving run, one run of the bound call (outside it), in the same rounds
    served, bound = (lib.counts[k] - before[k] for k in ("inside", "outside"))
    assert served == bound > 0, (served, bound)
    lib.counts["outside"] = before["outside"]
    made.clear()
    counted = lib.counts["inside"]
    host_profile_from_bundle(bundle_dir, "rt3-paper", tmp_path / "p.yaml", time_cap_s=0.05)
    codes["profile"] = set(made)
    assert lib.counts["inside"] > counted  # the profile ran inferences, through the spy
    assert lib.counts["outside"] == 0, lib.counts
    assert all(len(c) == 1 for c in codes.values()), codes
    assert len(set.union(*codes.values())) == 1, codes  # one code path for all three


def test_evaluate_checks_the_serving_call_within_3pct_of_the_bound_call():
    from lab.compression.evaluation import SetRow, _latency_check

    def row(served: float, bound: float | None) -> SetRow:
        return SetRow(
            "s", None, "block-column", True, 0.5, 0.2, 9.0, 0.0, 10,
            latency_estimate_ms=served, latency_measured_ms=served,
            latency_measured_median_ms=served, latency_bound_median_ms=bound,
        )  # fmt: skip

    key = "latency_measured_within_3pct_of_bound_call"
    assert _latency_check([row(1.02, 1.0), row(0.98, 1.0)])[key] is True
    assert _latency_check([row(1.02, 1.0), row(1.04, 1.0)])[key] is False
    assert _latency_check([row(0.96, 1.0)])[key] is False  # either way: not the same call
    assert key not in _latency_check([row(1.5, None)])  # the torch reference: no bound call


def test_settled_rounds_time_a_variant_on_its_own_caches_not_its_first_call():
    """timed_rounds' ``settle``: each round's first call after the switch runs untimed, so
    a variant whose first call after a switch is slow (cold caches) is timed warm; without
    it one sample in ``per_round`` is the cold call. The call count says what ran."""
    import time

    from lab.runtime.measure import timed_rounds

    COLD = 0.2  # s: far over any no-op's time, even on a loaded host
    state = {"cold": True, "calls": 0}

    def switch():
        state["cold"] = True

    def run():
        state["calls"] += 1
        if state["cold"]:
            time.sleep(COLD)  # the first inference after a switch, caches cold
            state["cold"] = False

    fns = {"a": (switch, run), "b": (switch, run)}
    raw: dict[str, list[float]] = {}
    timed_rounds(fns, rounds=3, per_round=2, warmup=1, raw=raw, settle=1)
    assert state["calls"] == 2 * (1 + 3 * (1 + 2))
    assert all(len(v) == 6 and max(v) < COLD for v in raw.values())  # (a no-op, 0.2 s late?)
    unsettled: dict[str, list[float]] = {}
    timed_rounds(fns, rounds=3, per_round=2, warmup=1, raw=unsettled)
    assert all(sum(x >= COLD for x in v) == 3 for v in unsettled.values())

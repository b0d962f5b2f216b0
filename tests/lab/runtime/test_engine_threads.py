"""The native engine's thread pool: the same logits at every thread count (bit for bit: the
split is by output rows and heads), odd shapes, many calls and switches on one pool, an
engine closed (or collected, or forked) with live workers, out-of-range counts refused; the
runner's --threads; the bundle's searched thread count against the one it runs at."""

import json
import os
import select
import subprocess
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from lab.cli import main
from lab.host.threads import MAX_THREADS, ThreadCountError, check_threads, parse_thread_counts
from lab.runtime import engine as E
from lab.runtime import runner as R
from lab.runtime.bundle import Bundle
from lab.runtime.export import export_bundle
from lab.runtime.reconfigurable import ReconfigurableModel, module_from_bundle
from lab.runtime.synthetic import synthetic_bundle
from lab.runtime.thread_count import ThreadsWarning, searched_threads, warn_other_threads

# odd sizes: vocab (7 block-rows of 32, the last partial) and in_proj rows not multiples of
# the block height or of the thread counts
SMALL = {"vocab_size": 203, "emb": 40, "ff": 24, "layers": 2, "heads": 4}
# smaller than any thread count used: one block-row per layer, one head
TINY = {"vocab_size": 7, "emb": 4, "ff": 3, "layers": 1, "heads": 1}

pytestmark = pytest.mark.skipif(E.library() is None, reason=f"no engine: {E.status()}")


@pytest.fixture(autouse=True)
def split_every_job(monkeypatch):
    """These models' jobs are far below the engine's split bound (they would all run on the
    caller): every job is split, so the pool is what these tests drive (the runner inherits
    it); the bound itself is tested on its own below."""
    monkeypatch.setenv("RT3E_SPLIT_MACS", "0")


@pytest.fixture(scope="module", params=[32, 8])
def bundle(request, tmp_path_factory):
    d = tmp_path_factory.mktemp(f"b{request.param}") / "bundle"
    return Bundle.load(synthetic_bundle(d, SMALL, block_rows=request.param, block_cols=4))


@pytest.fixture(scope="module")
def bundle32(tmp_path_factory):
    d = tmp_path_factory.mktemp("b") / "bundle"
    return Bundle.load(synthetic_bundle(d, SMALL, block_rows=32, block_cols=4))


@pytest.fixture(scope="module")
def export(bundle, tmp_path_factory):
    return export_bundle(bundle, tmp_path_factory.mktemp("x") / "export")


@pytest.fixture(scope="module")
def export32(bundle32, tmp_path_factory):
    return export_bundle(bundle32, tmp_path_factory.mktemp("x") / "export")


def _tasks() -> int:
    """Threads of this process now (Linux: /proc/self/task)."""
    return len(os.listdir("/proc/self/task"))


def test_threads_1_2_3_give_the_same_logits_as_each_other_and_pytorch(bundle, export):
    engines = {n: E.Engine(export, threads=n) for n in (1, 2, 3)}
    assert {n: e.threads for n, e in engines.items()} == {1: 1, 2: 2, 3: 3}
    module = module_from_bundle(bundle)
    gen = torch.Generator().manual_seed(0)
    for length in (1, 2, 9, 35):
        tokens = torch.randint(0, SMALL["vocab_size"], (2, length), generator=gen)
        for name in [None, *bundle.sets]:
            ps = None if name is None else bundle.sets[name]
            with torch.inference_mode():
                want = R.masked_dense(module, ps)(tokens).numpy()
            got = {}
            for n, eng in engines.items():
                eng.select(name)
                got[n] = eng(tokens).numpy()
            assert R.max_rel_err(got[1], want) <= 1e-4, (length, name)
            for n in (2, 3):  # split by output rows and heads: bit for bit
                assert np.array_equal(got[n], got[1]), (length, name, n)
    for eng in engines.values():
        eng.close()


def test_a_model_smaller_than_the_pool_runs_on_it(tmp_path):
    """One block-row per layer and one head: most workers get no part."""
    b = Bundle.load(synthetic_bundle(tmp_path / "b", TINY, {"bp": 0.5}, block_rows=8, block_cols=2))
    x = export_bundle(b, tmp_path / "x")
    one, many = E.Engine(x, threads=1), E.Engine(x, threads=5)
    for name in (None, "bp"):
        one.select(name)
        many.select(name)
        for length in (1, 3):
            tokens = np.arange(length, dtype=np.int64) % TINY["vocab_size"]
            assert np.array_equal(many.logits(tokens), one.logits(tokens))


def test_the_pool_survives_many_calls_switches_and_count_changes(export):
    """One pool, hundreds of calls of every length on alternating sets (the bound call and
    forward_into included), then other counts on the same engine: always the 1-thread
    logits."""
    ref, eng = E.Engine(export), E.Engine(export, threads=3)
    names = [None, *eng.set_names]
    rng = np.random.default_rng(1)
    expected: dict = {}
    for i in range(300):
        name, length = names[i % len(names)], 1 + (i * 7) % 40
        tokens = rng.integers(0, SMALL["vocab_size"], length).astype(np.int64)
        ref.select(name)
        eng.select(name)
        out = np.empty((length, SMALL["vocab_size"]), np.float32)
        eng.forward_into(tokens, out)
        assert np.array_equal(out, ref.logits(tokens)), (i, name, length)
        expected[(name, length)] = (tokens, out)
    tokens = np.zeros(35, dtype=np.int64)
    out = np.empty((35, SMALL["vocab_size"]), np.float32)
    bound = eng.bind(tokens, out)
    for n in (2, 4, 1, 3):
        eng.set_threads(n)
        assert eng.threads == n
        for name in names:
            eng.select(name)
            ref.select(name)
            tokens[:] = rng.integers(0, SMALL["vocab_size"], 35)
            bound()
            assert np.array_equal(out, ref.logits(tokens)), (n, name)
    ref.close()
    eng.close()


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc")
def test_closing_or_collecting_an_engine_joins_its_threads(export32):
    before = _tasks()
    eng = E.Engine(export32, threads=4)
    assert _tasks() == before + 3  # the caller is the fourth
    eng.logits(np.arange(5, dtype=np.int64))
    eng.close()  # workers spinning or asleep: joined either way
    assert _tasks() == before
    with pytest.raises(E.EngineError, match="closed"):
        eng.logits(np.arange(5, dtype=np.int64))
    with pytest.raises(E.EngineError, match="closed"):
        eng.set_threads(2)
    eng.close()  # twice: nothing left to do
    fresh = E.Engine(export32, threads=3)  # closed without a single call
    fresh.close()
    gone = E.Engine(export32, threads=2)
    gone.logits(np.arange(3, dtype=np.int64))
    del gone  # garbage-collected with a live worker
    assert _tasks() == before
    eng = E.Engine(export32, threads=3)
    eng.set_threads(1)  # a smaller count joins the extra workers
    assert _tasks() == before
    eng.close()


def _cpu_ticks(task_dir: Path) -> int:
    """A thread's user and system CPU time in clock ticks (``/proc/.../stat``)."""
    fields = (task_dir / "stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc")
def test_a_job_below_the_split_bound_runs_on_the_caller_alone(export32, monkeypatch):
    """Every job of this model is below the default bound: its worker is never woken (no
    CPU time after it went to sleep); with RT3E_SPLIT_MACS=0 it works on every call."""
    tasks = Path("/proc/self/task")
    tokens = np.arange(35, dtype=np.int64)
    ticks, outs, calls = {}, {}, 3000
    for bound in ("0", ""):  # split every job first: how many calls give its worker 5 ticks
        monkeypatch.setenv("RT3E_SPLIT_MACS", bound)
        before = set(os.listdir(tasks))
        eng = E.Engine(export32, threads=2)
        try:
            (worker,) = set(os.listdir(tasks)) - before
            eng.select("bp")
            outs[bound] = eng.logits(tokens)
            time.sleep(0.05)  # past its spin: asleep unless a job wakes it
            start, n, t0 = _cpu_ticks(tasks / worker), 0, time.monotonic()
            while n < calls or (bound == "0" and _cpu_ticks(tasks / worker) - start < 5):
                eng.logits(tokens)
                n += 1
                if time.monotonic() - t0 > 20:  # a host too loaded to run the worker at all
                    break
            ticks[bound], calls = _cpu_ticks(tasks / worker) - start, n
        finally:
            eng.close()
    assert ticks["0"] >= 5, ticks  # woken on every job, and spinning between them
    assert ticks[""] == 0, (ticks, calls)  # as many calls: never woken
    assert np.array_equal(outs[""], outs["0"])


@pytest.mark.parametrize("bad", ["-1", "1e6", "x", "2000000000000", " 5"])
def test_a_bad_split_bound_is_refused_naming_it(export32, monkeypatch, bad):
    monkeypatch.setenv("RT3E_SPLIT_MACS", bad)
    with pytest.raises(E.EngineError, match=r"RT3E_SPLIT_MACS .*expected an integer") as err:
        E.Engine(export32, threads=2)
    assert "\n" not in str(err.value)


def _allowed(task_dir: Path) -> str:
    """A thread's allowed CPUs as the kernel lists them (``Cpus_allowed_list``)."""
    status = (task_dir / "status").read_text()
    return next(
        ln.split(":")[1].strip() for ln in status.splitlines() if ln.startswith("Cpus_allowed_list")
    )


TWO_CPUS = pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs an affinity mask of two CPUs or more (a pinned thread is told apart by it)",
)


@TWO_CPUS
def test_a_library_engines_workers_are_left_to_the_scheduler(export32):
    """Pinned to CPUs of their own, a worker kept its CPU while the scheduler put the
    (unpinned) Python caller on it: the engine places no thread of a library caller."""
    tasks = Path("/proc/self/task")
    before = set(os.listdir(tasks))
    mask = _allowed(tasks / str(threading.get_native_id()))
    eng = E.Engine(export32, threads=3)
    try:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 0.5:  # a worker places itself when it first runs
            eng.logits(np.arange(64, dtype=np.int64))
        workers = set(os.listdir(tasks)) - before
        assert len(workers) == 2
        assert {_allowed(tasks / w) for w in workers} == {mask}
    finally:
        eng.close()


@TWO_CPUS
def test_the_runner_pins_its_caller_and_workers_one_to_a_cpu(host_runner, export32):
    """The runner is a process of its own: its caller on the first CPU of the mask, each
    worker on one of the others (read from /proc while it runs)."""
    cpus = sorted(os.sched_getaffinity(0))[:2]
    cmd = [str(host_runner), str(export32), "--set", "bp", "--runs", "1000000", "--threads", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        tasks = Path(f"/proc/{proc.pid}/task")
        for _ in range(1000):  # the pool is pinned before the first run, the runs last minutes
            allowed = {t: _allowed(tasks / t) for t in os.listdir(tasks)}
            if len(allowed) == 2 and allowed[str(proc.pid)] == str(cpus[0]):
                break
            time.sleep(0.01)
        assert allowed[str(proc.pid)] == str(cpus[0])
        assert sorted(allowed.values()) == sorted(str(c) for c in cpus)
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_runs_every_part_itself(export32):
    """The workers stay in the parent: the child must neither hang nor differ."""
    eng = E.Engine(export32, threads=3)
    tokens = np.arange(20, dtype=np.int64)
    want = eng.logits(tokens)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: compute, report, leave without running pytest's teardown
        try:
            ok = np.array_equal(eng.logits(tokens), want)
            eng.close()
            os.write(w, b"same" if ok else b"differs")
        finally:
            os._exit(0)
    os.close(w)
    ready, _, _ = select.select([r], [], [], 30)
    if not ready:
        os.kill(pid, 9)
    said = os.read(r, 16) if ready else b"hung"
    os.close(r)
    os.waitpid(pid, 0)
    assert said == b"same"
    assert np.array_equal(eng.logits(tokens), want)  # the parent's pool still works
    eng.close()


@pytest.mark.parametrize("bad", [0, -1, MAX_THREADS + 1, 100000, 2**40])
def test_an_out_of_range_count_is_refused_and_changes_nothing(export32, bad):
    with pytest.raises(E.EngineError, match=r"threads: expected 1\.\.256"):
        E.Engine(export32, threads=bad)
    eng = E.Engine(export32, threads=2)
    with pytest.raises(E.EngineError, match=r"threads: expected 1\.\.256"):
        eng.set_threads(bad)
    assert eng.threads == 2
    eng.close()


def test_a_count_that_is_not_an_integer_is_refused(export32):
    with pytest.raises(E.EngineError, match="expected an integer"):
        E.Engine(export32, threads=2.0)  # type: ignore[arg-type]


def test_thread_counts_parse_and_check():
    assert parse_thread_counts("1,2,1, 4") == [1, 2, 4]
    assert check_threads(MAX_THREADS) == MAX_THREADS
    for text in ("0", "1,257", "", "2,", "-1", "1.5"):
        with pytest.raises(ThreadCountError, match="--threads"):
            parse_thread_counts(text)
    with pytest.raises(ThreadCountError):
        check_threads(True)  # type: ignore[arg-type]


def test_the_runtime_runs_its_engine_on_the_threads_asked(bundle):
    rm = ReconfigurableModel.from_bundle(bundle, executor="engine", engine_threads=3)
    assert rm.engine.threads == 3
    ref = ReconfigurableModel.from_bundle(bundle, executor="engine")
    assert ref.engine.threads == 1
    tokens = torch.randint(0, SMALL["vocab_size"], (1, 12), generator=torch.Generator())
    for name in rm.set_names:
        rm.switch(name)
        ref.switch(name)
        assert torch.equal(rm(tokens), ref(tokens))


# ---------------------------------------------------------------- the runner
@pytest.fixture(scope="module")
def host_runner(tmp_path_factory):
    return R.build_runner("host", tmp_path_factory.mktemp("r") / "runner")


def test_the_runner_gives_the_same_logits_on_3_threads_and_says_how_many(
    host_runner, export32, tmp_path
):
    ids = [(t * 37 + 5) % SMALL["vocab_size"] for t in range(23)]
    logits = {}
    for n in (1, 3):
        dump = tmp_path / f"l{n}.f32"
        out = R.run_runner(host_runner, export32, "p30", 2, 1, "bp", ids, dump, threads=n)
        assert out["threads"] == n and len(out["runs_ms"]) == 2 and out["switch_to"] == "bp"
        logits[n] = dump.read_bytes()
    assert logits[3] == logits[1]


@pytest.mark.parametrize("bad", ["0", "257", "100000", "two", "", "-3"])
def test_the_runner_refuses_a_bad_thread_count_in_one_line(host_runner, bad, tmp_path):
    """Exit 2 before any work: the export does not even exist."""
    done = subprocess.run(
        [str(host_runner), str(tmp_path / "nowhere"), "--set", "bp", "--threads", bad],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert lines == ["rt3lab-runner: error: --threads: expected 1..256"], lines


def run(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


@pytest.mark.parametrize(
    "args",
    [
        ["runner", "verify", "--bundle", "/nowhere", "--threads", "100000"],
        ["bench", "runner", "--bundle", "/nowhere", "--threads", "0"],
        ["bench", "runtime", "--bundle", "/nowhere", "--threads", "1,100000"],
        ["bench", "runtime", "--synthetic", "small", "--threads", "1,x"],
        ["profile", "--bundle", "/nowhere", "--board", "b", "--out", "o", "--threads", "257"],
    ],
)
def test_a_bad_threads_option_is_one_line_exit_2_before_any_work(args, capsys):
    """The bundle does not exist: the count is refused first."""
    code, out, err = run(args, capsys)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rt3lab: error: --threads: "), lines


def test_aarch64_runner_verify_on_2_threads_under_qemu(bundle32, capsys):
    """Fails, not skips, where qemu-aarch64 or ziglang is missing (as the 1-thread test)."""
    code, out, err = run(
        ["runner", "verify", "--bundle", str(bundle32.path), "--target", "aarch64-linux",
         "--threads", "2", "--json"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    result = json.loads(out)
    assert result["threads"] == 2 and result["ok"]
    assert set(result["sets"]) == {"dense", *bundle32.sets}
    assert all(e <= 1e-4 for e in result["sets"].values()), result


# ---------------------------------------------------------------- searched vs run
def _searched_at(path: Path, threads: int) -> Path:
    doc = json.loads((path / "bundle.json").read_text())
    doc["provenance"]["latency_table"] = {"file": "latency_table.json", "threads": threads}
    (path / "bundle.json").write_text(json.dumps(doc))
    return path


def test_a_bundle_searched_at_another_count_says_so_once(tmp_path):
    path = _searched_at(synthetic_bundle(tmp_path / "b", SMALL, block_cols=4), 4)
    b = Bundle.load(path)
    assert searched_threads(b) == 4
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert warn_other_threads(b, 4) is None
        note = warn_other_threads(b, 2)
    assert [str(w.message) for w in caught] == [note]
    assert caught[0].category is ThreadsWarning
    assert "4 threads" in note and "uses 2" in note and "\n" not in note


@pytest.mark.slow  # auto times every layer's forms and the engine
def test_profiling_runs_the_engine_on_its_threads_and_warns_of_another_search(tmp_path):
    """``rt3lab profile``'s workload: torch and the engine on --threads, the count recorded,
    and a bundle searched at another count warned about."""
    from lab.profiling.workload import BundleWorkload

    path = _searched_at(synthetic_bundle(tmp_path / "b", SMALL, block_cols=4), 3)
    before = torch.get_num_threads()
    try:
        with pytest.warns(ThreadsWarning, match="measured at 3 threads; this run uses 2"):
            wl = BundleWorkload(path, seq_len=6, threads=2)
        assert wl.describe()["threads"] == 2
        if wl.model.engine is not None:  # auto chose the engine: on the same count
            assert wl.model.engine.threads == 2
        wl.activate("p30")
        wl.run_once()
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the count it was searched at: no warning
            BundleWorkload(path, seq_len=6, threads=3)
    finally:
        torch.set_num_threads(before)


# ---------------------------------------------------------------- the benches' --threads
def _bench_runtime_1_2(bundle, capsys, executorch: str):
    """``bench runtime --threads 1,2 --json`` on ``bundle`` at its smallest settings, with
    ``executorch`` (``--executorch`` or ``--no-executorch``); the exit code, out and err."""
    return run(
        ["bench", "runtime", "--bundle", str(bundle.path), "--threads", "1,2", "--json",
         "--rounds", "1", "--per-round", "1", "--warmup", "1", "--switch-reps", "10",
         "--seq-len", "5", "--no-anchors", "--no-layers", executorch],
        capsys,
    )  # fmt: skip


def test_bench_runtime_reports_the_engine_at_every_thread_count(bundle32, capsys):
    """The whole bench at the first count (its JSON keys as before), the engine alone at
    each; the caller's torch threads and CPUs are given back."""
    threads, cpus = torch.get_num_threads(), os.sched_getaffinity(0)
    code, out, err = _bench_runtime_1_2(bundle32, capsys, "--no-executorch")
    assert code in (0, None), err
    data = json.loads(out)
    assert data["host"]["threads"] == 1 and data["engine_threads"] == 1
    assert data["dense_latency_ms"] > 0 and set(data["sets"]) == set(bundle32.sets)
    assert "--threads 1,2" in data["command"]
    by = data["engine_by_threads"]
    assert list(by) == ["1", "2"]
    for n, row in by.items():
        assert row["threads"] == int(n) and row["dense_latency_ms"] > 0
        assert set(row["sets"]) == set(bundle32.sets)
        for s in row["sets"].values():
            assert s["speedup_over_engine_dense"] == pytest.approx(
                row["dense_latency_ms"] / s["latency_ms"]
            )
    assert by["1"]["dense_speedup_over_first"] == 1.0
    assert torch.get_num_threads() == threads and os.sched_getaffinity(0) == cpus


@pytest.mark.slow  # builds the host runner and runs both sides
def test_bench_runner_runs_both_sides_on_the_threads_asked(bundle32, capsys):
    code, out, err = run(
        ["bench", "runner", "--bundle", str(bundle32.path), "--threads", "2", "--runs", "1",
         "--rounds", "1", "--warmup", "0", "--json"],
        capsys,
    )  # fmt: skip
    assert code in (0, None), err
    result = json.loads(out)
    assert result["threads"] == 2 and list(result["latency"]) == ["dense", *bundle32.sets]


def test_the_latency_table_times_the_engine_on_its_thread_count(bundle32):
    from lab.compression.latency.table import _engine_model

    rm = _engine_model(module_from_bundle(bundle32), list(bundle32.sets.values()), True, 2)
    assert rm.engine.threads == 2
    rm.engine.close()


def test_engine_by_threads_times_a_peer_at_every_count(bundle32):
    """The peer runtime (here PyTorch's dense model, whose thread count the function sets)
    runs in the same rounds at each count, told each count before its runs."""
    from lab.runtime.measure import make_inputs
    from lab.runtime.thread_scaling import engine_by_threads

    base = module_from_bundle(bundle32)
    told: list[int] = []

    def peer(first: int):
        told.append(first)
        args = make_inputs(base, 1, 5)["args"]

        def threads(n: int) -> None:
            told.append(n)
            torch.set_num_threads(n)

        return (lambda: base(*args)), threads

    before = torch.get_num_threads()
    try:
        by = engine_by_threads(base, list(bundle32.sets.values()), [1, 2], 1, 5, 2, 1, 1,
                               anchor=peer)  # fmt: skip
    finally:
        torch.set_num_threads(before)
    assert told[0] == 1 and set(told[1:]) == {1, 2}
    for row in by.values():
        assert row["anchor_dense_latency_ms"] > 0
        assert row["engine_dense_speedup_over_anchor"] == pytest.approx(
            row["anchor_dense_latency_ms"] / row["dense_latency_ms"]
        )


def test_bench_runtime_times_executorch_at_every_thread_count(bundle32, capsys):
    pytest.importorskip("executorch", reason="the 'anchors' extra is not installed")
    code, out, err = _bench_runtime_1_2(bundle32, capsys, "--executorch")
    assert code in (0, None), err
    by = json.loads(out)["engine_by_threads"]
    assert all(r["anchor_dense_latency_ms"] > 0 for r in by.values())

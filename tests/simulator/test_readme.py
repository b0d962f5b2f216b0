"""The README's examples run."""

import doctest
import json
from pathlib import Path


def test_readme_examples_run():
    readme = Path(__file__).resolve().parents[2] / "simulator" / "README.md"
    result = doctest.testfile(str(readme), module_relative=False)
    assert result.attempted >= 3 and result.failed == 0


def test_readme_bench_figures_match_the_recorded_run():
    root = Path(__file__).resolve().parents[2]
    readme = (root / "simulator" / "README.md").read_text(encoding="utf-8")
    b = json.loads((root / "docs" / "simulator-bench.json").read_text(encoding="utf-8"))
    caps = b["fast_s_by_capacity"]
    naive = b["naive_simpy"]
    expected = [
        f"recorded at load average\n{b['load_average'][0]}",
        f"{b['fast_wall_s']:.4f} s / {b['exact_wall_s']:.2f} s",
        f"{b['fast_inferences']:,} / {b['exact_inferences']:,}; {b['life_rel_diff']:.1e}",
        f"{caps['1x']:.4f} s / {caps['10x']:.4f} s / {caps['100x']:.4f} s",
        f"{naive['capacity_mah']:g} mAh, {naive['exact_inferences']:,} inferences) | "
        f"{b['exact_over_naive_simpy']:.2f}x",
        f"cutoff) | {b['thevenin_over_pybamm']:.2f} |",
        f"{b['mean_poisson']['workload']}, 1x / 10x / 100x capacity | "
        + " / ".join(f"{b['mean_poisson']['mean_s_by_capacity'][k]:.4f} s" for k in caps),
        " / ".join(f"{a['life_rel_diff']:.1e}" for a in b["agreement_by_capacity"].values())
        + "; equal |",
        f"| {b['mean_poisson']['fast_stepped_s']:.2f} s; "
        f"{b['mean_poisson']['life_rel_diff_seed0']:.1e} |",
    ]
    for text in expected:
        assert text in readme, text


def test_readme_sweep_bench_figures_match_the_recorded_run():
    root = Path(__file__).resolve().parents[2]
    readme = " ".join((root / "simulator" / "README.md").read_text(encoding="utf-8").split())
    b = json.loads((root / "docs" / "sweep-bench.json").read_text(encoding="utf-8"))
    lo, hi = b["speedup_processes_range"]
    expected = [
        f"`--repeats {b['repeats']}`, 2-core machine, load average {b['load_average'][0]})",
        f"{b['cells']:,} cells, serial {b['serial_cells_per_s']:.0f} cells/s",
        f"**{b['speedup_processes']:.2f}x** serial (median of {b['repeats']} pairs; "
        f"range {lo:.2f}-{hi:.2f})",
        f"start-up {b['cluster_start_s']['processes']:.2f} s apart; "
        f"2 threads {b['speedup_threads']:.2f}x",
        f"{b['dask_processes'][0]['batches']} tasks per sweep",
    ]
    for text in expected:
        assert text in readme, text

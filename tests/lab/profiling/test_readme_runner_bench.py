"""The runner-bench figures in lab/profiling/README.md are the recorded runs' under docs/."""

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _ratios(b: dict) -> str:
    rs = [v["ratio"] for v in b["latency"].values()]
    return f"runner/ctypes {min(rs):.2f}-{max(rs):.2f}"


def test_readme_runner_bench_figures_match_the_recorded_runs():
    readme = " ".join((ROOT / "lab" / "profiling" / "README.md").read_text().split())
    q = json.loads((ROOT / "docs" / "runner-bench-quick.json").read_text())
    d = json.loads((ROOT / "docs" / "runner-bench-distilbert.json").read_text())
    lat = {k: v["runner_median_ms"] for k, v in q["latency"].items()}
    sparsest = min(lat, key=lat.__getitem__)
    extra = [v["forward_into_extra_ms"] * 1e3 for v in q["latency"].values()]
    expected = [
        f"Recorded on {q['cpu']} ({', '.join(q['simd'])}), 1 thread, 35 tokens",
        f"(`docs/runner-bench-quick.json`, load average {q['load_average'][0]})",
        f"runner dense {lat['dense']:.3f} ms, sparsest set ({sparsest}) {lat[sparsest]:.3f} ms",
        f"{_ratios(q)} over dense and the {len(lat) - 1} sets",
        f"`forward_into` costs {min(extra):.0f}-{max(extra):.0f} us more per call",
        f"switch median {q['switch_median_ms'] * 1e6:.1f} ns on the runner",
        f"`--rounds {d['rounds']} --runs {d['runs']}`, load average {d['load_average'][0]})",
        f"runner dense {d['latency']['dense']['runner_median_ms']:.1f} ms; {_ratios(d)}",
        f"switch median {d['switch_median_ms'] * 1e6:.1f} ns.",
    ]
    for text in expected:
        assert text in readme, text


def test_readme_reading_of_the_ratios_follows_the_recorded_runs():
    """The prose under the lines: each record's ratio range, which variant is the low end,
    and the quick bundle's range of runner latencies."""
    readme = " ".join((ROOT / "lab" / "profiling" / "README.md").read_text().split())
    q = json.loads((ROOT / "docs" / "runner-bench-quick.json").read_text())
    d = json.loads((ROOT / "docs" / "runner-bench-distilbert.json").read_text())
    ms = [v["runner_median_ms"] for v in q["latency"].values()]
    qlow = min(q["latency"], key=lambda n: q["latency"][n]["ratio"])
    dlow = min(d["latency"], key=lambda n: d["latency"][n]["ratio"])
    rq = [v["ratio"] for v in q["latency"].values()]
    rd = [v["ratio"] for v in d["latency"].values()]
    assert (
        f"{min(rq):.2f}-{max(rq):.2f} on the quick bundle's {min(ms):.2f}-{max(ms):.2f} ms"
        in readme
    )
    assert f"({qlow} the {min(rq):.2f})" in readme
    assert f"{min(rd):.2f}-{max(rd):.2f} at DistilBERT's size ({dlow} the {min(rd):.2f})" in readme
    assert all(r <= 1.01 for r in rq + rd)  # "level or faster": never slower by more than 1 %

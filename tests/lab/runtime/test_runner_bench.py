"""`rt3lab bench runner`: the host runner and the ctypes engine on one export, side by side,
and the runner's switch time; only JSON with --json; bad options are one line and exit 2.
(No speed is asserted: figures come from the bench on a quiet machine.)"""

import json

import pytest

from lab.cli import main
from lab.runtime.runner import median
from lab.runtime.synthetic import synthetic_bundle

SMALL = {"vocab_size": 150, "emb": 32, "ff": 24, "layers": 1, "heads": 2}


def run(args, capsys):
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(args)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def test_runner_against_ctypes_and_the_switch_on_one_export(tmp_path, capsys):
    b = synthetic_bundle(tmp_path / "b", SMALL, {"bp": 0.6, "p30": 0.3}, block_cols=4)
    code, out, err = run(
        ["bench", "runner", "--bundle", str(b), "--runs", "3", "--rounds", "2", "--json"], capsys
    )
    assert code in (0, None), err
    result = json.loads(out)  # nothing but JSON
    assert list(result["latency"]) == ["dense", "bp", "p30"]
    for row in result["latency"].values():
        assert row["runner_median_ms"] > 0 and row["ctypes_median_ms"] > 0
        assert row["ratio"] == pytest.approx(row["runner_median_ms"] / row["ctypes_median_ms"])
        lo, hi = row["ratio_ci95"]
        assert lo <= hi
        assert row["within_10pct"] == (abs(row["ratio"] - 1) <= 0.1)
        assert row["forward_into_median_ms"] > 0
        assert row["forward_into_extra_ms"] == pytest.approx(
            row["forward_into_median_ms"] - row["ctypes_median_ms"]
        )
    assert list(result["switch_ms"]) == ["dense->bp", "bp->p30", "p30->dense"]
    assert result["switch_median_ms"] == pytest.approx(median(list(result["switch_ms"].values())))
    assert result["switch_under_0.1ms"] == (result["switch_median_ms"] < 0.1)
    assert len(result["load_average"]) == 3 and result["threads"] == 1


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--runs", "0", "--synthetic", "small"], "--runs: must be at least 1"),
        (["--synthetic", "bert"], "--synthetic: 'bert' is not one of"),
        (["--synthetic", "small", "--bundle", "x"], "exactly one of --bundle"),
    ],
)
def test_bad_options_are_one_line(args, says, capsys):
    code, _, err = run(["bench", "runner", *args], capsys)
    assert code == 2 and says in err and len(err.strip().splitlines()) == 1

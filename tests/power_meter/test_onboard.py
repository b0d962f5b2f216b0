"""On-board sensors as drivers, at their boundaries: a fake powercap tree (with counter
wraps), both INA3221 hwmon layouts, a fake vcgencmd; and `rt3lab meter record --driver
rapl` on a fake tree, writing the same trace format as a USB meter."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from cli_runner import rt3lab
from hypothesis import given, settings
from hypothesis import strategies as st
from sensor_fakes import PMIC, RANGE_UJ, Package, hwmon_new, hwmon_old, rapl_tree, set_uj

from power_meter.drivers import make_meter
from power_meter.onboard.files import CommandResult, SysfsError, SysfsTree
from power_meter.onboard.ina3221 import Ina3221Meter
from power_meter.onboard.pi5_pmic import Pi5PmicMeter, parse_pmic_read_adc
from power_meter.onboard.rapl import RaplMeter
from power_meter.sample import Flag, Meter, MeterDisconnected, MeterError
from power_meter.trace import check_trace, read_trace


def test_rapl_counter_wrap_is_handled(tmp_path):
    pc = rapl_tree(tmp_path, start_uj=RANGE_UJ - 200_000)
    m = RaplMeter(SysfsTree(tmp_path), update_period_s=0.0)
    assert m.zones == ["intel-rapl:0"]  # the sub-zone is not added again
    assert isinstance(m, Meter)
    m.open()
    set_uj(pc, "intel-rapl:0", 300_000)  # wrapped past max_energy_range_uj
    b = m.read_batch()
    assert m.energy_j == pytest.approx(0.500001, abs=1e-9) and m.wraps == 1
    assert len(b) == 1 and b.power_w[0] > 0 and b.flags[0] == int(Flag.POWER_ONLY)
    assert math.isnan(b.voltage_v[0]) and math.isnan(b.current_a[0])


@settings(max_examples=30, deadline=None)
@given(
    start=st.integers(0, RANGE_UJ),
    steps=st.lists(st.integers(0, RANGE_UJ // 2), min_size=1, max_size=12),
)
def test_rapl_energy_is_the_sum_of_increments_whatever_the_wraps(tmp_path_factory, start, steps):
    root = tmp_path_factory.mktemp("rapl")
    pc = rapl_tree(root, start_uj=start)
    m = RaplMeter(SysfsTree(root), update_period_s=0.0)
    m.open()
    value = start
    for s in steps:
        value = (value + s) % (RANGE_UJ + 1)
        set_uj(pc, "intel-rapl:0", value)
        m.read_batch()  # one read per increment
    assert m.energy_j == pytest.approx(sum(steps) / 1e6, abs=1e-6)


def test_rapl_absent_or_a_zone_not_there_is_explained(tmp_path):
    with pytest.raises(MeterError, match="no intel-rapl"):
        RaplMeter(SysfsTree(tmp_path))
    rapl_tree(tmp_path)
    with pytest.raises(MeterError, match=r"\['intel-rapl:7'\] not among the RAPL zones"):
        make_meter("rapl", str(tmp_path), channels=["intel-rapl:7"])


def test_a_counter_gone_mid_run_is_a_disconnect(tmp_path):
    pc = rapl_tree(tmp_path)
    m = make_meter("rapl", str(tmp_path), poll_interval_s=0.0)
    m.open()
    (pc / "intel-rapl:0/energy_uj").unlink()
    with pytest.raises(MeterDisconnected, match="sensor lost"):
        m.read_batch()


def test_ina3221_new_layout_uses_the_input_rail(tmp_path):
    hwmon_new(tmp_path)
    src = Ina3221Meter(SysfsTree(tmp_path))
    assert [r.name for r in src.rails] == ["VDD_IN"]  # the others are inside it
    assert src.read_power_w() == pytest.approx(6.0)
    sub = Ina3221Meter(SysfsTree(tmp_path), rails=["VDD_CPU_GPU_CV", "VDD_SOC"])
    assert sub.read_power_w() == pytest.approx(3.5)
    assert sub.identify().details == {"rails": "VDD_CPU_GPU_CV,VDD_SOC"}
    with pytest.raises(MeterError, match="not among the INA3221 rails"):
        Ina3221Meter(SysfsTree(tmp_path), rails=["VDD_GPU"])


def test_ina3221_old_layout_sums_rails_by_the_trapezoid(tmp_path):
    d = hwmon_old(tmp_path)
    m = Ina3221Meter(SysfsTree(tmp_path), update_period_s=0.0)
    assert m.read_power_w() == pytest.approx(2.0)
    m.open()
    (d / "in_power1_input").write_text("3500\n")  # 2 W, then 4 W: the interval's mean is 3 W
    b = m.read_batch()
    assert b.power_w[0] == pytest.approx(3.0)


def test_pi5_pmic_pairs_rails_by_name():
    rails = parse_pmic_read_adc(PMIC)
    assert set(rails) == {"3V7_WL_SW", "3V3_SYS", "VDD_CORE"}
    assert rails["VDD_CORE"] == pytest.approx(2.1 * 0.87)
    calls = []

    def vcgencmd(argv):
        calls.append(list(argv))
        return CommandResult(0, PMIC)

    assert Pi5PmicMeter(vcgencmd).read_power_w() == pytest.approx(0.0527 * 3.31 + 2.1 * 0.87)
    assert calls == [["vcgencmd", "pmic_read_adc"]]


def test_pi5_pmic_on_another_board_is_explained():
    m = Pi5PmicMeter(lambda argv: CommandResult(0, 'error=1 error_msg="Command not registered"'))
    with pytest.raises(SysfsError, match="a Raspberry Pi 5 is needed"):
        m.read_power_w()
    with pytest.raises(MeterDisconnected, match="a Raspberry Pi 5 is needed"):
        m.open()


@given(st.text())
def test_pmic_parser_never_raises(text):
    for rail, watts in parse_pmic_read_adc(text).items():
        assert rail and watts == watts


def test_meter_record_rapl_on_a_fake_powercap_tree(tmp_path):
    pc = rapl_tree(tmp_path / "sys", range_uj=2_000_000, start_uj=1_900_000)  # wraps at 0.2 s
    out = tmp_path / "rapl.csv"
    with Package(pc, watts=10.0, start_uj=1_900_000, range_uj=2_000_000):
        r = rt3lab(
            "meter", "record", "--driver", "rapl", "--port", str(tmp_path / "sys"),
            "--out", str(out), "--duration", "1.2", "--poll-interval", "0.05", "--json",
        )  # fmt: skip
    assert r.code == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["driver"] == "rapl" and summary["samples"] >= 10 and summary["gaps"] == []
    assert summary["mean_power_w"] == pytest.approx(10.0, rel=0.1)
    df = read_trace(out)
    check_trace(df, out)  # power-only rows: no voltage, no current
    assert set(df["flags"]) == {int(Flag.POWER_ONLY)}
    assert df["voltage_v"].isna().all() and np.isfinite(df["power_w"]).all()
    s = rt3lab("meter", "summary", str(out), "--json")
    assert s.code == 0, s.stderr
    assert json.loads(s.stdout)["energy_j"] == pytest.approx(summary["energy_j"])


def test_meter_record_on_a_tree_without_rapl_is_one_line_exit_2(tmp_path):
    r = rt3lab(
        "meter", "record", "--driver", "rapl", "--port", str(tmp_path), "--out",
        str(tmp_path / "t.csv"), "--duration", "0.2",
    )  # fmt: skip
    assert r.code == 2 and "no intel-rapl:N zone" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "t.csv").exists()

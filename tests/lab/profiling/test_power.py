"""Power sources at their boundaries: a fake powercap tree (with a counter wrap), both
INA3221 hwmon layouts, a fake vcgencmd, and power_meter's UM34C emulator on a pty."""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from profiling_fakes import FrequencyLaw, put

from lab.profiling.power import (
    Ina3221Power,
    MeterPower,
    Pi5PmicPower,
    PowerSourceError,
    RaplPower,
    parse_pmic_read_adc,
)
from lab.profiling.sysfs import CommandResult, LocalFiles, SysfsError

RANGE_UJ = 262143328850  # a real max_energy_range_uj


def rapl_tree(root, zones=("intel-rapl:0",), range_uj=RANGE_UJ, start_uj=0):
    for z in zones:
        d = root / "class/powercap" / z
        d.mkdir(parents=True)
        (d / "name").write_text("package-0\n")
        (d / "energy_uj").write_text(f"{start_uj}\n")
        (d / "max_energy_range_uj").write_text(f"{range_uj}\n")
        sub = root / "class/powercap" / f"{z}:0"  # core sub-zone: inside the package
        sub.mkdir()
        (sub / "energy_uj").write_text("123\n")
    return root / "class/powercap"


def set_uj(pc, zone, value):
    put(pc / zone / "energy_uj", f"{value}\n")


def test_rapl_counter_wrap_is_handled(tmp_path):
    pc = rapl_tree(tmp_path, start_uj=RANGE_UJ - 200_000)
    src = RaplPower(LocalFiles(tmp_path))
    assert src.zones == ["intel-rapl:0"]  # the sub-zone is not added again
    src.begin("w")
    set_uj(pc, "intel-rapl:0", 300_000)  # wrapped past max_energy_range_uj
    r = src.end("w")
    assert r.energy_j == pytest.approx(0.500001, abs=1e-9)
    assert r.energy_j > 0 and src.wraps == 1


@settings(max_examples=30)
@given(
    start=st.integers(0, RANGE_UJ),
    steps=st.lists(st.integers(0, RANGE_UJ // 2), min_size=1, max_size=12),
)
def test_rapl_energy_is_the_sum_of_increments_whatever_the_wraps(tmp_path_factory, start, steps):
    root = tmp_path_factory.mktemp("rapl")
    pc = rapl_tree(root, start_uj=start)
    src = RaplPower(LocalFiles(root))
    src.begin("w")
    value = start
    for s in steps:
        value = (value + s) % (RANGE_UJ + 1)
        set_uj(pc, "intel-rapl:0", value)
        src._poll()  # the poller thread's step, one read per increment
    assert src.end("w").energy_j == pytest.approx(sum(steps) / 1e6, abs=1e-6)


def test_rapl_with_poller_thread_across_wraps(tmp_path):
    pc = rapl_tree(tmp_path, range_uj=2_000_000, start_uj=1_900_000)  # wraps every 0.2 s
    watts, stop = 10.0, threading.Event()

    def fake_package():
        t0, e0 = time.monotonic(), 1_900_000
        while not stop.wait(0.005):
            e = e0 + (time.monotonic() - t0) * watts * 1e6
            set_uj(pc, "intel-rapl:0", int(e) % 2_000_001)

    th = threading.Thread(target=fake_package, daemon=True)
    th.start()
    src = RaplPower(LocalFiles(tmp_path), update_period_s=0.05)
    src.start()
    try:
        src.begin("w")
        time.sleep(1.0)
        r = src.end("w")
    finally:
        src.close()
        stop.set()
        th.join()
    assert src.wraps >= 3
    assert r.mean_power_w == pytest.approx(watts, rel=0.05)
    assert r.reliable


def test_rapl_absent_is_explained(tmp_path):
    with pytest.raises(PowerSourceError, match="no intel-rapl"):
        RaplPower(LocalFiles(tmp_path))


def hwmon_new(root):
    d = root / "class/hwmon/hwmon1"
    d.mkdir(parents=True)
    (d / "name").write_text("ina3221\n")
    for i, (label, mv, ma) in enumerate(
        [("VDD_IN", 5000, 1200), ("VDD_CPU_GPU_CV", 5000, 400), ("VDD_SOC", 5000, 300)], 1
    ):
        (d / f"in{i}_label").write_text(label + "\n")
        (d / f"in{i}_input").write_text(f"{mv}\n")
        (d / f"curr{i}_input").write_text(f"{ma}\n")
    return d


def hwmon_old(root):
    d = root / "class/hwmon/hwmon0"
    d.mkdir(parents=True)
    for i, (name, mw) in enumerate([("POM_5V_GPU", 500), ("POM_5V_CPU", 1500)]):
        (d / f"rail_name_{i}").write_text(name + "\n")
        (d / f"in_power{i}_input").write_text(f"{mw}\n")
    return d


def test_ina3221_new_layout_uses_the_input_rail(tmp_path):
    hwmon_new(tmp_path)
    src = Ina3221Power(LocalFiles(tmp_path))
    assert [r.name for r in src.rails] == ["VDD_IN"]  # the others are inside it
    assert src.read_power_w() == pytest.approx(6.0)
    sub = Ina3221Power(LocalFiles(tmp_path), rails=["VDD_CPU_GPU_CV", "VDD_SOC"])
    assert sub.read_power_w() == pytest.approx(3.5)
    with pytest.raises(PowerSourceError, match="not among the INA3221 rails"):
        Ina3221Power(LocalFiles(tmp_path), rails=["VDD_GPU"])


def test_ina3221_old_layout_sums_rails_and_integrates(tmp_path):
    hwmon_old(tmp_path)
    src = Ina3221Power(LocalFiles(tmp_path), update_period_s=0.02)
    assert src.read_power_w() == pytest.approx(2.0)
    src.start()
    try:
        src.begin("w")
        time.sleep(0.3)
        r = src.end("w")
    finally:
        src.close()
    assert r.mean_power_w == pytest.approx(2.0, rel=1e-6)
    assert r.samples >= 2 and r.reliable


def test_ina3221_sensor_gone_mid_run(tmp_path):
    d = hwmon_old(tmp_path)
    src = Ina3221Power(LocalFiles(tmp_path))
    src.begin("w")
    (d / "in_power1_input").unlink()
    with pytest.raises(PowerSourceError, match="sensor lost mid-run"):
        src.end("w")


PMIC = """\
 3V7_WL_SW_A current(0)=0.00000000A
 3V3_SYS_A current(1)=0.05270000A
 VDD_CORE_A current(7)=2.10000000A
 3V7_WL_SW_V volt(8)=3.74400000V
 3V3_SYS_V volt(9)=3.31000000V
 VDD_CORE_V volt(15)=0.87000000V
 EXT5V_V volt(24)=5.13000000V
 BATT_V volt(25)=0.00000000V
"""


def test_pi5_pmic_pairs_rails_by_name():
    rails = parse_pmic_read_adc(PMIC)
    assert set(rails) == {"3V7_WL_SW", "3V3_SYS", "VDD_CORE"}
    assert rails["VDD_CORE"] == pytest.approx(2.1 * 0.87)
    calls = []

    def vcgencmd(argv):
        calls.append(list(argv))
        return CommandResult(0, PMIC)

    assert Pi5PmicPower(vcgencmd).read_power_w() == pytest.approx(0.0527 * 3.31 + 2.1 * 0.87)
    assert calls == [["vcgencmd", "pmic_read_adc"]]


def test_pi5_pmic_on_another_board_is_explained():
    src = Pi5PmicPower(lambda argv: CommandResult(0, 'error=1 error_msg="Command not registered"'))
    with pytest.raises(SysfsError, match="a Raspberry Pi 5 is needed"):
        src.read_power_w()


@given(st.text())
def test_pmic_parser_never_raises(text):
    for rail, watts in parse_pmic_read_adc(text).items():
        assert rail and watts == watts


def _um34c(law, faults=None, accel=1.0):
    from power_meter.emulators import UMEmulator

    emu = UMEmulator(law, model="UM34C", faults=faults, accel=accel)
    law.clock = emu.clock
    return emu


@pytest.mark.parametrize("driver", ["um34c", "tc66c"])
def test_usb_meter_windows_through_the_emulator_on_a_pty(driver):
    from power_meter.emulators import make_emulator

    law = FrequencyLaw(1.5, 2e-9, {1000000: 1.0, 2000000: 1.2}, 1000000)
    emu = make_emulator(driver, law, accel=4.0)  # an update every 0.125 s of wall time
    law.clock = emu.clock
    emu.start()
    src = MeterPower(driver, emu.port)
    try:
        src.start()
        time.sleep(0.3)  # the meter's first update
        src.begin("low")
        time.sleep(0.9)
        low = src.end("low")
        law.set_frequency(2000000)
        time.sleep(0.4)  # the meter reports the mean of its last update period
        src.begin("high")
        time.sleep(0.9)
        high = src.end("high")
    finally:
        src.close()
        emu.stop()
    assert low.mean_power_w == pytest.approx(law.law(1000000), rel=0.01)
    assert high.mean_power_w == pytest.approx(law.law(2000000), rel=0.01)
    assert low.reliable and high.reliable


def test_usb_meter_that_disappears_mid_run_is_an_error():
    from power_meter.emulators import Fault

    law = FrequencyLaw(1.0, 1e-9, {1000000: 1.0}, 1000000)
    emu = _um34c(law, faults=[Fault("disconnect", at_s=0.5, duration_s=30.0)]).start()
    src = MeterPower("um34c", emu.port)
    try:
        src.start()
        src.begin("w")
        time.sleep(1.0)
        with pytest.raises(PowerSourceError, match="meter lost mid-run"):
            src.end("w")
    finally:
        src.close()
        emu.stop()


def test_usb_meter_port_missing_is_explained(tmp_path):
    src = MeterPower("um34c", str(tmp_path / "rfcomm9"))
    with pytest.raises(PowerSourceError, match="cannot open"):
        src.start()

"""Power sources as profiling uses them: `--power` parsed against the driver registry, and
energy windows over a driver (a fake powercap tree with counter wraps, an INA3221 tree,
power_meter's UM34C and TC66C emulators on a pty), with sensors and meters that go away."""

from __future__ import annotations

import time

import pytest
from profiling_fakes import FrequencyLaw
from sensor_fakes import Package, hwmon_new, hwmon_old, rapl_tree

from lab.profiling.board.sysfs import LocalFiles
from lab.profiling.power import MeterPower, PowerSourceError, make_power, power_kinds
from power_meter.drivers import DRIVERS
from power_meter.onboard.ina3221 import Ina3221Meter
from power_meter.onboard.rapl import RaplMeter


def test_power_kinds_are_the_registry_and_none(tmp_path):
    assert power_kinds() == (*DRIVERS, "none")
    assert {"um34c", "tc66c", "ppk2", "rapl", "ina3221", "pi5-pmic"} <= set(power_kinds())
    assert make_power("none", LocalFiles(tmp_path)) is None
    with pytest.raises(PowerSourceError, match="needs a port"):
        make_power("um34c", LocalFiles(tmp_path))
    with pytest.raises(PowerSourceError, match=r"is not one of um24c\|.*\|pi5-pmic\|none"):
        make_power("fluke", LocalFiles(tmp_path))


def test_a_missing_sensor_is_refused_when_the_source_is_made(tmp_path):
    with pytest.raises(PowerSourceError, match="no intel-rapl"):
        make_power("rapl", LocalFiles(tmp_path))
    with pytest.raises(PowerSourceError, match="no INA3221 rails"):
        make_power("ina3221", LocalFiles(tmp_path))
    hwmon_new(tmp_path)
    with pytest.raises(PowerSourceError, match="not among the INA3221 rails"):
        make_power("ina3221:VDD_GPU", LocalFiles(tmp_path))
    src = make_power("ina3221:VDD_SOC,VDD_CPU_GPU_CV", LocalFiles(tmp_path))
    assert src.meter == "ina3221" and src.onboard
    assert [r.name for r in src.driver.rails] == ["VDD_CPU_GPU_CV", "VDD_SOC"]


def window(src: MeterPower, seconds: float):
    """One energy window of ``seconds`` over a started source (closed afterwards)."""
    src.start()
    try:
        src.begin("w")
        time.sleep(seconds)
        return src.end("w")
    finally:
        src.close()


def test_rapl_windows_with_the_poller_across_wraps(tmp_path):
    pc = rapl_tree(tmp_path, range_uj=2_000_000, start_uj=1_900_000)  # wraps every 0.2 s
    meter = RaplMeter(LocalFiles(tmp_path), update_period_s=0.05)
    with Package(pc, watts=10.0, start_uj=1_900_000, range_uj=2_000_000):
        r = window(MeterPower(meter, "rapl", "rapl", onboard=True), 1.0)
    assert meter.wraps >= 3
    assert r.mean_power_w == pytest.approx(10.0, rel=0.05)
    assert r.reliable and r.samples >= 10


def test_ina3221_windows_integrate_the_rails(tmp_path):
    hwmon_old(tmp_path)
    meter = Ina3221Meter(LocalFiles(tmp_path), update_period_s=0.02)
    r = window(MeterPower(meter, "ina3221", "ina3221", onboard=True), 0.3)
    assert r.mean_power_w == pytest.approx(2.0, rel=1e-6)
    assert r.samples >= 2 and r.reliable


def test_ina3221_sensor_gone_mid_run(tmp_path):
    d = hwmon_old(tmp_path)
    src = MeterPower(
        Ina3221Meter(LocalFiles(tmp_path), update_period_s=0.02), "ina3221", "ina3221", True
    )
    src.start()
    try:
        src.begin("w")
        (d / "in_power1_input").unlink()
        time.sleep(0.2)
        with pytest.raises(PowerSourceError, match="--power ina3221: sensor lost mid-run"):
            src.end("w")
    finally:
        src.close()


@pytest.mark.parametrize("driver", ["um34c", "tc66c"])
def test_usb_meter_windows_through_the_emulator_on_a_pty(driver, tmp_path):
    from power_meter.emulators import make_emulator

    law = FrequencyLaw(1.5, 2e-9, {1000000: 1.0, 2000000: 1.2}, 1000000)
    emu = make_emulator(driver, law, accel=4.0)  # an update every 0.125 s of wall time
    law.clock = emu.clock
    emu.start()
    src = make_power(f"{driver}:{emu.port}", LocalFiles(tmp_path))
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


def test_usb_meter_that_disappears_mid_run_is_an_error(tmp_path):
    from power_meter.emulators import Fault, UMEmulator

    law = FrequencyLaw(1.0, 1e-9, {1000000: 1.0}, 1000000)
    emu = UMEmulator(law, model="UM34C", faults=[Fault("disconnect", at_s=0.5, duration_s=30.0)])
    law.clock = emu.clock
    emu.start()
    src = make_power(f"um34c:{emu.port}", LocalFiles(tmp_path))
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
    src = make_power(f"um34c:{tmp_path / 'rfcomm9'}", LocalFiles(tmp_path))
    with pytest.raises(PowerSourceError, match="cannot open"):
        src.start()


def test_pi5_pmic_through_a_fake_vcgencmd(tmp_path):
    from sensor_fakes import PMIC

    from lab.profiling.board.sysfs import CommandResult

    def vcgencmd(argv):
        return CommandResult(0, PMIC)

    src = make_power("pi5-pmic", LocalFiles(tmp_path), runner=vcgencmd)
    assert src.command_runner() is vcgencmd  # the thermal probe asks it about throttling
    src.driver.update_period_s = 0.02
    r = window(src, 0.2)
    assert r.mean_power_w == pytest.approx(0.0527 * 3.31 + 2.1 * 0.87) and r.reliable
    other = make_power("pi5-pmic", LocalFiles(tmp_path), runner=lambda argv: CommandResult(1, ""))
    with pytest.raises(PowerSourceError, match=r"--power pi5-pmic: cannot open: .*exit 1"):
        other.start()

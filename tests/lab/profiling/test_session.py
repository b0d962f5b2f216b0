"""The procedure end to end in-process: a fake board (sysfs tree + fake kernel), a CPU whose
speed follows the fake clock, an INA3221 or RAPL tree; bad input leaves the board as it was."""

from __future__ import annotations

import csv
import errno
import os

import pytest
import yaml
from profiling_fakes import ClockWorkload, FakeKernel, make_cpufreq_tree, put, snapshot
from sensor_fakes import hwmon_old

from device_profiles import load_profile, unprovenanced_numbers
from lab.profiling.board.connect import sysfs_root
from lab.profiling.board.cpufreq import CpufreqControl, FrequencyError
from lab.profiling.board.sysfs import LocalFiles, SysfsError
from lab.profiling.power import MeterPower, PowerSourceError, make_power
from lab.profiling.session import parse_levels, profile_board
from power_meter.onboard.ina3221 import Ina3221Meter

LEVELS = [600000, 1000000, 1400000, 1800000, 2000000]  # odroid-xu4 a15 levels
FAST = dict(
    warmup=1, min_runs=8, max_runs=40, time_cap_s=0.4, settle_s=0.0, idle_s=0.15,
    power_window_s=0.15, switch_reps=10,
)  # fmt: skip


def ina(files, period_s=0.1):
    """The board's INA3221 rails as a power source (`--power ina3221`)."""
    return MeterPower(Ina3221Meter(files, update_period_s=period_s), "ina3221", "ina3221", True)


def board(tmp_path, **kw):
    d = make_cpufreq_tree(tmp_path, LEVELS, **kw)
    hwmon_old(tmp_path)
    return d, LocalFiles(tmp_path)


class Jittery(ClockWorkload):
    """Every other inference takes three times as long: no median settles within
    ``rel_ci``, so every row is re-measured (``wide-ci``), each after a level change."""

    def run_once(self) -> None:
        self.n = getattr(self, "n", 0) + 1
        for _ in range(1 if self.n % 2 else 3):
            super().run_once()


def test_measured_profile_validates_and_fits_latency(tmp_path):
    affinity = os.sched_getaffinity(0)
    d, files = board(tmp_path)
    before = snapshot(d)
    with FakeKernel(d) as k:
        wl = ClockWorkload(k, a_ms=1.0, b_ms_ghz={"bp": 20.0, "p30": 10.0})
        out = profile_board(
            wl, CpufreqControl(files), ina(files, 0.02), "odroid-xu4",
            tmp_path / "out/board.yaml", FAST, levels=[600000, 1000000, 2000000], files=files,
        )  # fmt: skip
    assert snapshot(d) == before
    p = load_profile(out.profile_path)
    assert p.levels_khz == [600000, 1000000, 2000000]
    assert p.cluster("a15").voltages_v == [0.9, 1.0, 1.3125]
    assert unprovenanced_numbers(p) == []
    assert p.resolve(p.power[0].levels[0].provenance).kind == "measured"
    assert p.resolve(p.power[0].levels[0].provenance).meter == "ina3221"
    assert p.power_at(1000000)[0] == pytest.approx(2.0, rel=1e-3)
    assert [v.name for v in p.variants] == ["bp", "p30"]
    lat = {r.freq_khz: r.latency_ms for r in p.variant("bp").latency}
    assert lat[600000] > lat[1000000] > lat[2000000]
    fit = out.latency_fits["bp"]
    # sleep() overshoots by a roughly constant amount (it lands in a, not in b), but on a
    # loaded machine the scheduler adds noise: the medians must still give b within 15%
    assert fit.b_ms_ghz == pytest.approx(20.0, rel=0.15)
    assert out.latency_fits["p30"].b_ms_ghz == pytest.approx(10.0, rel=0.15)
    assert p.governor.start_khz == 2000000 and {s.cap_khz for s in p.governor.steps} <= {
        600000, 1000000, 2000000,
    }  # fmt: skip
    assert p.switch_cost is not None
    rows = list(csv.DictReader(out.csv_path.open()))
    assert {r["kind"] for r in rows} == {"busy", "idle"} and len(rows) == 3 * 3
    assert all(r["freq_ok"] == "True" for r in rows)
    assert all(float(r["temp_c"]) == 45.0 for r in rows)
    cal = out.summary()
    assert cal["power_fit"]["c_eff_f"] is not None
    # pinned to the policy's CPUs (0, 1) that this process may use, and unpinned after
    assert cal["control"]["pinned_cpus"] == sorted({0, 1} & affinity)
    assert os.sched_getaffinity(0) == affinity
    assert cal["comparison"][0]["published_w"] > 0
    lat_cmp = cal["latency_comparison"]  # odroid-xu4's op-count model on the bundle's counts
    assert {(r["variant"], r["freq_khz"]) for r in lat_cmp} == {
        (v, k) for v in ("bp", "p30") for k in (600000, 1000000, 2000000)
    }
    assert all(r["base_kind"] == "modelled (op-count model)" for r in lat_cmp)


def test_power_none_is_not_a_measured_board(tmp_path):
    assert make_power("none", LocalFiles(tmp_path)) is None
    with pytest.raises(PowerSourceError, match="needs a port"):
        make_power("um34c", LocalFiles(tmp_path))
    with pytest.raises(PowerSourceError, match="is not one of"):
        make_power("fluke", LocalFiles(tmp_path))


def test_level_not_offered_fails_before_anything_is_touched(tmp_path):
    d, files = board(tmp_path)
    before = snapshot(d)
    with FakeKernel(d) as k, pytest.raises(FrequencyError, match=r"\[1200000\] kHz not offered"):
        profile_board(
            ClockWorkload(k, 1.0, {"bp": 1.0}), CpufreqControl(files), ina(files),
            "odroid-xu4", tmp_path / "x.yaml", FAST, levels=[600000, 1200000], files=files,
        )  # fmt: skip
    assert snapshot(d) == before and k.history == []
    assert not (tmp_path / "x.yaml").exists()


def test_frequency_that_does_not_stick_mid_run(tmp_path):
    d, files = board(tmp_path)
    before = snapshot(d)
    with (
        FakeKernel(d, stuck_khz={2000000: 1800000}) as k,
        pytest.raises(
            FrequencyError, match="set 2000000 kHz but the frequency read back is 1800000"
        ),
    ):
        profile_board(
            ClockWorkload(k, 1.0, {"bp": 1.0}), CpufreqControl(files, settle_timeout_s=0.2),
            ina(files), "odroid-xu4", tmp_path / "x.yaml", FAST,
            levels=[600000, 2000000], files=files,
        )  # fmt: skip
    assert snapshot(d) == before
    assert not (tmp_path / "x.yaml").exists()


def test_sensor_that_disappears_mid_run(tmp_path):
    d, files = board(tmp_path)
    before = snapshot(d)
    rail = tmp_path / "class/hwmon/hwmon0/in_power1_input"

    class Vanishing(ClockWorkload):
        def activate(self, name):
            rail.unlink(missing_ok=True)  # the sensor goes away once the run is under way
            return super().activate(name)

    with FakeKernel(d) as k, pytest.raises(PowerSourceError, match="sensor lost mid-run"):
        profile_board(
            Vanishing(k, 1.0, {"bp": 1.0}), CpufreqControl(files), ina(files),
            "odroid-xu4", tmp_path / "x.yaml", FAST, levels=[600000, 1000000], files=files,
        )  # fmt: skip
    assert snapshot(d) == before


class ReadOnlyFiles(LocalFiles):
    """A read-only sysfs mount at the file boundary: writes fail with EROFS."""

    def writable(self, path):
        return False

    def write(self, path, value):
        raise SysfsError(f"{self.where(path)}: {errno.errorcode[errno.EROFS]}")


def test_read_only_sysfs(tmp_path):
    d, files = board(tmp_path)
    before = snapshot(d)
    ro = ReadOnlyFiles(tmp_path)
    with FakeKernel(d) as k, pytest.raises(FrequencyError, match="not writable"):
        profile_board(
            ClockWorkload(k, 1.0, {"bp": 1.0}), CpufreqControl(ro), ina(files),
            "odroid-xu4", tmp_path / "x.yaml", FAST, levels=[600000], files=files,
        )  # fmt: skip
    assert snapshot(d) == before


def test_unknown_board_needs_a_base(tmp_path):
    d, files = board(tmp_path)
    with FakeKernel(d) as k, pytest.raises(ValueError, match="give --base PROFILE"):
        profile_board(
            ClockWorkload(k, 1.0, {"bp": 1.0}), CpufreqControl(files), ina(files),
            "my-odroid", tmp_path / "x.yaml", FAST, files=files,
        )  # fmt: skip


def test_parse_levels_and_roots(tmp_path):
    assert parse_levels("all") is None
    assert parse_levels("1.4GHz, 600MHz,1000000") == [600000, 1000000, 1400000]
    with pytest.raises(FrequencyError, match="'fast' is not a frequency"):
        parse_levels("600000,fast")
    assert sysfs_root(tmp_path / "devices/system/cpu") == tmp_path
    assert sysfs_root(tmp_path) == tmp_path


def test_written_yaml_is_plain(tmp_path):
    d, files = board(tmp_path)
    with FakeKernel(d) as k:
        out = profile_board(
            ClockWorkload(k, 0.5, {"bp": 1.0}), CpufreqControl(files), ina(files),
            "odroid-xu4", tmp_path / "b.yaml", FAST, levels=[600000, 1000000], files=files,
            power_output="levels",
        )  # fmt: skip
    data = yaml.safe_load(out.profile_path.read_text())
    assert data["sources"]["rt3lab-power"]["board"] == "odroid-xu4"
    assert data["sources"]["rt3lab-power"]["tool"].startswith("rt3lab ")


def test_a_frequency_that_drops_mid_run_is_flagged(tmp_path):
    d, files = board(tmp_path)
    before = snapshot(d)

    class Throttling(Jittery):
        def activate(self, name):
            if name == "p30" and self.kernel.khz == 2000000:
                self.kernel.stuck[2000000] = 1400000  # a thermal cap arrives, and stays
                self.kernel.step()  # the hardware obeys it now, not at the thread's next poll
            return super().activate(name)

    with FakeKernel(d) as k:
        out = profile_board(
            Throttling(k, 0.5, {"bp": 2.0, "p30": 1.0}), CpufreqControl(files),
            ina(files), "odroid-xu4", tmp_path / "t.yaml", {**FAST, "time_cap_s": 0.1},
            levels=[1000000, 2000000], files=files,
        )  # fmt: skip
    assert snapshot(d) == before
    flagged = out.run.flagged
    # Exactly the run the cap caught. Every row is noisy (wide-ci), so every row is
    # re-measured; at 2 GHz, which no longer sticks, the rows stay as measured and their
    # flags say why, instead of the whole run being lost.
    assert [(r.level_khz, r.variant) for r in flagged] == [(2000000, "p30")]
    assert flagged[0].readback_khz == 1400000 and flagged[0].readback_end_khz == 1400000
    flags = out.profile.flags or []
    assert {(f.freq_khz, f.variant) for f in flags if "not re-measured" in f.detail} == {
        (2000000, "bp"), (2000000, "p30"),
    }  # fmt: skip
    assert all("does not stick" in f.detail for f in flags if f.freq_khz == 2000000)
    p = load_profile(out.profile_path)
    row = next(r for r in p.variant("p30").latency if r.freq_khz == 2000000)
    assert "FLAGGED" in p.resolve(row.provenance).note
    assert out.summary()["flagged"][0]["variant"] == "p30"


def test_thermal_and_throttle_readers(tmp_path):
    from lab.profiling.board.sysfs import CommandResult
    from lab.profiling.board.thermal import ThermalProbe

    make_cpufreq_tree(tmp_path, LEVELS, thermal_c=51.5)
    z = tmp_path / "class/thermal/thermal_zone1"
    z.mkdir()
    (z / "temp").write_text("63000\n")
    t = tmp_path / "devices/system/cpu/cpu0/thermal_throttle"
    t.mkdir(parents=True)
    (t / "core_throttle_count").write_text("3\n")
    (t / "package_throttle_count").write_text("4\n")
    probe = ThermalProbe(LocalFiles(tmp_path))
    assert probe.max_temp_c() == 63.0
    assert probe.throttle_count() == 7
    assert probe.pi_throttled_now() is None
    pi = ThermalProbe(LocalFiles(tmp_path), lambda argv: CommandResult(0, "throttled=0x50004\n"))
    assert pi.pi_throttled_now() is True  # bit 2: throttled now
    pi = ThermalProbe(LocalFiles(tmp_path), lambda argv: CommandResult(0, "throttled=0x50000\n"))
    assert pi.pi_throttled_now() is False  # only "has occurred" bits
    assert ThermalProbe(LocalFiles(tmp_path / "none")).max_temp_c() is None


def test_power_model_output_from_a_sensor_following_the_clock(tmp_path):
    """An INA3221 rail whose power follows the fake kernel's frequency by a known law gives
    that law back exactly, however the meter's polls (every 0.3 s, longer than a window)
    fall against the level changes, the re-measurements' changes included: no window
    holds a sample that straddles a change (it would average the two levels' power)."""
    d, files = board(tmp_path)
    a15 = load_profile("odroid-xu4").cluster("a15")
    volts = dict(zip(a15.levels_khz, a15.voltages_v, strict=True))
    rail = tmp_path / "class/hwmon/hwmon0/in_power1_input"
    (tmp_path / "class/hwmon/hwmon0/in_power0_input").write_text("0\n")

    def law(khz):
        put(rail, f"{(1.2 + 1.5e-9 * volts[khz] ** 2 * khz * 1e3) * 1e3:.3f}\n")

    with FakeKernel(d, on_change=law) as k:
        law(k.khz)
        out = profile_board(
            Jittery(k, 0.5, {"bp": 1.0}), CpufreqControl(files),
            ina(files, 0.3), "odroid-xu4", tmp_path / "m.yaml",
            {**FAST, "settle_s": 0.05, "time_cap_s": 0.1},
            levels=[600000, 1400000, 2000000], files=files, power_output="model",
        )  # fmt: skip
    assert {(f.freq_khz, f.rule) for f in out.profile.flags or []} == {
        (k, "wide-ci") for k in (600000, 1400000, 2000000)
    }  # re-measured twice at each level, after a change each time
    p = load_profile(out.profile_path)
    m = p.power[0].model
    assert m.p_static_w == pytest.approx(1.2, rel=0.01)
    assert m.c_eff_f == pytest.approx(1.5e-9, rel=0.01)
    assert p.resolve(m.provenance).kind == "modelled"
    assert "P_static" in p.resolve(m.provenance).formula


def test_power_model_output_refuses_a_falling_fit(tmp_path):
    d, files = board(tmp_path)
    before = snapshot(d)
    rail = tmp_path / "class/hwmon/hwmon0/in_power1_input"

    def falling(khz):  # a sensor on the wrong rail: less power at a higher clock
        put(rail, f"{3000 - khz / 2000:.3f}\n")

    with (
        FakeKernel(d, on_change=falling) as k,
        pytest.raises(ValueError, match="is not positive"),
    ):
        profile_board(
            ClockWorkload(k, 0.5, {"bp": 1.0}), CpufreqControl(files), ina(files),
            "odroid-xu4", tmp_path / "m.yaml", FAST, levels=[600000, 2000000], files=files,
            power_output="model",
        )  # fmt: skip
    assert snapshot(d) == before

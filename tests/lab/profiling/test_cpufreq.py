"""cpufreq control on a fake sysfs tree with the kernel's layout, made to respond by a
fake-kernel thread; Android through a fake adb on the same kind of tree."""

from __future__ import annotations

import errno

import pytest
from profiling_fakes import FakeAdb, FakeKernel, make_cpufreq_tree, snapshot

from lab.profiling.board.adb import AndroidControl
from lab.profiling.board.cpufreq import CpufreqControl, FrequencyError, NoControl, find_policy
from lab.profiling.board.guard import restoring
from lab.profiling.board.sysfs import LocalFiles, SysfsError

LEVELS = [600000, 1000000, 1400000, 1800000]


@pytest.mark.parametrize("layout", ["policy", "cpu"])
def test_sets_levels_reads_back_and_restores(tmp_path, layout):
    d = make_cpufreq_tree(tmp_path, LEVELS, layout=layout, cpus=(4, 5))
    before = snapshot(d)
    c = CpufreqControl(LocalFiles(tmp_path), policy="4", settle_timeout_s=2)
    assert c.levels_khz() == LEVELS
    with FakeKernel(d) as k, restoring(c):
        for level in (600000, 1400000):
            assert c.set_khz(level) == level
            assert (d / "scaling_governor").read_text().strip() == "userspace"
            assert k.khz == level
    assert snapshot(d) == before
    assert c.describe()["governor_found"] == "schedutil"


def test_default_policy_is_the_first(tmp_path):
    make_cpufreq_tree(tmp_path, LEVELS, cpus=(0, 1))
    assert find_policy(LocalFiles(tmp_path)).endswith("cpufreq/policy0")
    with pytest.raises(FrequencyError, match="no cpufreq policy"):
        find_policy(LocalFiles(tmp_path), "policy7")
    with pytest.raises(FrequencyError, match="not policyN"):
        find_policy(LocalFiles(tmp_path), "big")


def test_pins_min_max_without_userspace_and_restores(tmp_path):
    d = make_cpufreq_tree(tmp_path, LEVELS, governors=("performance", "schedutil"))
    before = snapshot(d)
    c = CpufreqControl(LocalFiles(tmp_path))
    with FakeKernel(d), restoring(c):
        assert c.set_khz(1000000) == 1000000
        assert (d / "scaling_min_freq").read_text().strip() == "1000000"
        assert (d / "scaling_max_freq").read_text().strip() == "1000000"
        assert c.set_khz(600000) == 600000
        assert c.describe()["method"] == "min=max"
    assert snapshot(d) == before


def test_frequency_that_does_not_stick_is_an_error_and_board_restored(tmp_path):
    d = make_cpufreq_tree(tmp_path, LEVELS)
    before = snapshot(d)
    c = CpufreqControl(LocalFiles(tmp_path), settle_timeout_s=0.2)
    with (
        FakeKernel(d, stuck_khz={1800000: 1400000}),
        pytest.raises(FrequencyError) as e,
        restoring(c),
    ):
        c.set_khz(1800000)
    assert "set 1800000 kHz but the frequency read back is 1400000 kHz" in str(e.value)
    assert snapshot(d) == before


def test_level_not_offered_is_refused_before_touching(tmp_path):
    d = make_cpufreq_tree(tmp_path, LEVELS)
    before = snapshot(d)
    c = CpufreqControl(LocalFiles(tmp_path))
    with pytest.raises(FrequencyError, match=r"\[1200000\] kHz not offered"):
        c.check_levels([600000, 1200000])
    assert snapshot(d) == before


class ReadOnlyFiles(LocalFiles):
    """A read-only sysfs mount, at the file boundary: writes fail with EROFS."""

    def writable(self, path: str) -> bool:
        return False

    def write(self, path: str, value: str) -> None:
        raise SysfsError(
            f"{self.where(path)}: cannot write {value!r}: {errno.errorcode[errno.EROFS]}"
        )


def test_read_only_sysfs_is_a_clear_error_and_nothing_changes(tmp_path):
    d = make_cpufreq_tree(tmp_path, LEVELS)
    before = snapshot(d)
    c = CpufreqControl(ReadOnlyFiles(tmp_path))
    with pytest.raises(FrequencyError, match="scaling_governor: not writable"):
        c.check_writable()
    with pytest.raises(SysfsError, match="EROFS"), restoring(c):
        c.set_khz(600000)
    assert snapshot(d) == before


def test_missing_available_frequencies_is_explained(tmp_path):
    d = make_cpufreq_tree(tmp_path, LEVELS)
    (d / "scaling_available_frequencies").unlink()
    with pytest.raises(FrequencyError, match="intel_pstate"):
        CpufreqControl(LocalFiles(tmp_path)).levels_khz()


def test_userspace_original_setspeed_restored(tmp_path):
    d = make_cpufreq_tree(tmp_path, LEVELS, governor="userspace")
    (d / "scaling_setspeed").write_text("1000000\n")
    before = snapshot(d)
    c = CpufreqControl(LocalFiles(tmp_path))
    with FakeKernel(d), restoring(c):
        c.set_khz(1800000)
    assert snapshot(d) == before


def test_android_over_fake_adb(tmp_path):
    d = make_cpufreq_tree(tmp_path / "sys", LEVELS, layout="cpu", cpus=(4, 5, 6, 7))
    before = snapshot(d)
    adb = FakeAdb(tmp_path)
    c = AndroidControl(adb, serial="8A1X", policy="cpu4")
    assert c.levels_khz() == LEVELS
    with FakeKernel(d), restoring(c):
        assert c.set_khz(1000000) == 1000000
        assert adb.services == {"thermal-engine": False, "perfd": False}
    assert snapshot(d) == before
    assert adb.services == {"thermal-engine": True, "perfd": True}
    assert all(call[:3] == ["adb", "-s", "8A1X"] for call in adb.calls)


def test_android_unrooted_is_refused(tmp_path):
    make_cpufreq_tree(tmp_path / "sys", LEVELS)
    with pytest.raises(FrequencyError, match="rooted device"):
        AndroidControl(FakeAdb(tmp_path, rooted=False))


def test_android_read_only(tmp_path):
    d = make_cpufreq_tree(tmp_path / "sys", LEVELS)
    before = snapshot(d)
    c = AndroidControl(FakeAdb(tmp_path, readonly=True))
    with pytest.raises(FrequencyError, match="not writable"):
        c.check_writable()
    assert snapshot(d) == before


def test_no_control_records_what_it_finds(tmp_path):
    make_cpufreq_tree(tmp_path, LEVELS)
    nc = NoControl(LocalFiles(tmp_path))
    assert nc.levels_khz() == [1800000]
    assert nc.set_khz(600000) == 1800000  # cannot set: reports the truth
    info = nc.describe()
    assert info["controlled"] is False and info["found_khz"] == [1800000]
    assert NoControl(assumed_khz=2000000).levels_khz() == [2000000]

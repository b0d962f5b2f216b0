"""The big cluster of a phone (where ``profile --adb`` runs the runner), read over a fake adb
from a fake sysfs tree with several cpufreq policies."""

from __future__ import annotations

from profiling_fakes import FakeAdb, make_cpufreq_tree

from lab.profiling.board.sysfs import AdbFiles, LocalFiles
from lab.profiling.cluster import big_cluster_policy, threads_for


def test_the_big_cluster_is_the_fastest_policy_then_the_widest(tmp_path):
    sys_root = tmp_path / "sys"
    make_cpufreq_tree(sys_root, [300000, 1800000], cpus=(0, 1, 2, 3))
    make_cpufreq_tree(sys_root, [300000, 2400000], cpus=(4, 5, 6), thermal_c=None)
    make_cpufreq_tree(sys_root, [300000, 2400000], cpus=(7,), thermal_c=None)
    adb = FakeAdb(tmp_path)  # the device's /sys is tmp_path/sys
    assert big_cluster_policy(AdbFiles(adb, serial="8A1X")) == "policy4"
    assert all(call[:3] == ["adb", "-s", "8A1X"] for call in adb.calls)
    # a faster prime core wins over the wider cluster
    make_cpufreq_tree(sys_root, [300000, 3000000], cpus=(8,), thermal_c=None)
    assert big_cluster_policy(LocalFiles(sys_root)) == "policy8"


def test_no_policy_directories_or_unreadable_maxima_leave_the_default(tmp_path):
    make_cpufreq_tree(tmp_path, [600000, 1400000], layout="cpu", cpus=(0, 1))
    assert big_cluster_policy(LocalFiles(tmp_path)) is None
    d = make_cpufreq_tree(tmp_path / "b", [600000, 1400000], cpus=(2, 3))
    (d / "cpuinfo_max_freq").write_text("<unsupported>\n")
    assert big_cluster_policy(LocalFiles(tmp_path / "b")) is None
    assert threads_for([4, 5, 6, 7]) == 4 and threads_for([]) == 1

"""The board under test, as profiling controls it: everything that changes a device's state.

- ``sysfs``: the file and command boundary (`LocalFiles` under a root, `AdbFiles` over an
  injected command runner); its read side is ``power_meter.onboard.files``;
- ``cpufreq``: frequency control (`CpufreqControl`, `NoControl`) behind one interface;
- ``adb``: the same on an Android device, with the vendor's DVFS daemons paused
  (`AndroidControl`);
- ``thermal``: hottest zone and throttling, where exposed (`ThermalProbe`);
- ``guard``: ``restoring(control)`` puts the board back on exit, error, Ctrl-C or SIGTERM;
- ``journal``: the saved settings on disk, so a killed run is restored by the next one.

Nothing here imports torch; power is read by ``power_meter`` drivers (``lab.profiling.power``).
"""

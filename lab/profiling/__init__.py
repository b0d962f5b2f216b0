"""Hardware-in-the-loop profiling: frequency control, power sources, calibration.

The flow, one module each:

- ``sysfs``: the file and command boundary (`LocalFiles` under a root, `AdbFiles` over an
  injected command runner);
- ``cpufreq`` / ``adb``: frequency control behind one interface (`CpufreqControl`,
  `AndroidControl`, `NoControl`), and ``guard.restoring`` that puts the board back on exit,
  error, Ctrl-C or SIGTERM;
- ``power``: energy windows from a USB meter (``power_meter``), Intel RAPL, Jetson INA3221,
  the Raspberry Pi 5 PMIC, or none;
- ``thermal``: hottest zone and throttling, where exposed;
- ``stats``: the median's order-statistic confidence interval and the repeat-until-stable
  loop; ``workload``: a bundle on the reconfigurable runtime;
- ``procedure``: every level x every variant, idle baselines, frequency read-back flags;
- ``calibrate``: ``P = P_static + C V^2 f`` and ``latency = a + b/f`` by least squares;
- ``output`` / ``session``: the validated profile, the raw CSV and the calibration JSON;
  ``rt3lab profile`` in ``cli``.

This package imports nothing heavy at start-up (the CLI imports it): torch is loaded only
when a bundle is.
"""

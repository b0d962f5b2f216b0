"""Hardware-in-the-loop profiling: frequency control, power sources, calibration.

The flow, one module each:

- ``board/``: everything that controls the device, in one place: the sysfs file and command
  boundary (``board.sysfs``: `LocalFiles` under a root, `AdbFiles` over an injected command
  runner), frequency control (``board.cpufreq``, ``board.adb``: `CpufreqControl`,
  `AndroidControl`, `NoControl`), ``board.thermal``, ``board.guard.restoring`` that puts
  the board back on exit, error, Ctrl-C or SIGTERM, the restore ``board.journal``, and
  ``board.connect`` (which board a run controls);
- ``power``: energy windows over any driver of ``power_meter.drivers.DRIVERS`` (USB meters,
  Intel RAPL, Jetson INA3221, the Raspberry Pi 5 PMIC), or none; ``--power`` takes the
  registry's names;
- ``stats``: the median's order-statistic confidence interval and the repeat-until-stable
  loop; ``workload``: a bundle on the reconfigurable runtime;
- ``procedure``: every level x every variant, idle baselines, frequency read-back flags;
- ``calibrate``: ``P = P_static + C V^2 f`` and ``latency = a + b/f`` by least squares;
- ``output`` / ``session``: the validated profile, the raw CSVs (per level and variant;
  every timed run) and the calibration JSON; ``samples``: the timed runs read back on the
  profile's levels (what ``simulator.bootstrap`` resamples);
  ``options``: `ProfileOptions`, what ``session.run_session`` is asked to do;
  ``rt3lab profile`` in ``cli``, a thin layer over it.

This package imports nothing heavy at start-up (the CLI imports it): torch is loaded only
when a bundle is.
"""

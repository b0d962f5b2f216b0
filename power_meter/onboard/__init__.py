"""On-board power sensors as meter drivers: Intel RAPL, Jetson INA3221, the Raspberry Pi 5 PMIC.

Each is read through a file or command boundary (`files`): a sysfs tree (a fake one in
tests), or ``vcgencmd``. Each poll gives one sample whose power is the mean over the
interval since the previous poll, so a recording or an energy window sums exactly what the
sensor measured.
"""

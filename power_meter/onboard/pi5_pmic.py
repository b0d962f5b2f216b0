"""Raspberry Pi 5 PMIC rails from ``vcgencmd pmic_read_adc``: each rail's current paired with
its voltage by name, summed (below wall power, which the PMIC does not see)."""

from __future__ import annotations

import re

from power_meter.onboard.files import CommandRunner, SysfsError, subprocess_runner
from power_meter.onboard.polled import InstantPowerMeter
from power_meter.sample import Clock, wall_clock

_PMIC_LINE = re.compile(
    r"^\s*(?P<rail>\S+?)_(?P<kind>[AV])\s+(?:current|volt)\(\d+\)=(?P<value>[-+\d.eE]+)(?P<unit>[AV])\s*$"
)


def parse_pmic_read_adc(text: str) -> dict[str, float]:
    """Per-rail power (W) from ``vcgencmd pmic_read_adc``: each ``RAIL_A`` current paired with
    its ``RAIL_V`` voltage by name; rails with only one of the two are left out.

    >>> out = '''
    ...  VDD_CORE_A current(7)=2.10000000A
    ...  3V3_SYS_A current(2)=0.05000000A
    ...  VDD_CORE_V volt(15)=0.80000000V
    ...  3V3_SYS_V volt(10)=3.30000000V
    ...  EXT5V_V volt(24)=5.10000000V'''
    >>> {k: round(v, 3) for k, v in parse_pmic_read_adc(out).items()}
    {'3V3_SYS': 0.165, 'VDD_CORE': 1.68}
    """
    amps: dict[str, float] = {}
    volts: dict[str, float] = {}
    for line in text.splitlines():
        m = _PMIC_LINE.match(line)
        if not m:
            continue
        (amps if m["kind"] == "A" else volts)[m["rail"]] = float(m["value"])
    return {r: amps[r] * volts[r] for r in sorted(amps) if r in volts}


class Pi5PmicMeter(InstantPowerMeter):
    """Raspberry Pi 5 PMIC rails (sum of V*I), read by running ``vcgencmd``."""

    driver = "pi5-pmic"
    model = "Raspberry Pi 5 PMIC"

    def __init__(
        self,
        runner: CommandRunner = subprocess_runner,
        program: str = "vcgencmd",
        update_period_s: float = 0.25,
        clock: Clock = wall_clock,
    ) -> None:
        """``program`` is the vcgencmd to run (a name on PATH, or a path)."""
        super().__init__(f"{program} pmic_read_adc", update_period_s, clock)
        self.runner = runner
        self.program = program

    def read_power_w(self) -> float:
        """Sum over paired rails, W."""
        res = self.runner([self.program, "pmic_read_adc"])
        if res.returncode != 0:
            raise SysfsError(f"{self.where}: exit {res.returncode}: {res.stderr.strip()}")
        rails = parse_pmic_read_adc(res.stdout)
        if not rails:
            raise SysfsError(
                f"{self.where}: no RAIL_A/RAIL_V pairs in its output "
                f"(got {res.stdout.strip()[:80]!r}); a Raspberry Pi 5 is needed"
            )
        return sum(rails.values())

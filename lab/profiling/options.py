"""What a profiling session is asked to do: `ProfileOptions`, the typed form of
``rt3lab profile``'s options (the CLI builds one from its argv; the demo or a script builds
one directly and passes it to ``lab.profiling.session.run_session``).

>>> o = ProfileOptions(bundle=Path("b"), board="odroid-xu4", out=Path("p.yaml"))
>>> o.host_mode, o.plan_settings()["time_cap_s"], o.serial
(True, 10.0, None)
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from lab.profiling.procedure import Plan


class OptionError(ValueError):
    """Options that do not go together; ``option`` names the one to change."""

    def __init__(self, message: str, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option


POWER_OUTPUTS = ("levels", "model")


@dataclass(frozen=True)
class ProfileOptions:
    """Everything ``rt3lab profile`` takes, by the option's name (``--settle-timeout`` is
    ``settle_timeout_s``; ``--warmup``, ``--time-cap`` and the other timing options are
    the `Plan`'s, whose own levels are left empty). ``power`` ``none`` is host mode;
    ``levels`` is a list of kHz, or the CLI's text (``all``, ``600000,1.4GHz``)."""

    bundle: Path
    board: str
    out: Path
    power: str = "none"
    cpufreq_root: Path = Path("/sys")
    policy: str | None = None
    adb: str | None = None
    levels: str | list[int] | None = None
    base: str | None = None
    name: str | None = None
    sets: list[str] | None = None
    seq_len: int = 35
    threads: int | None = None
    plan: Plan = field(default_factory=lambda: Plan(levels_khz=()))
    settle_timeout_s: float = 2.0
    power_output: str = "levels"
    host_khz: int | None = None
    deadlines: str = "bundle"
    memory_fraction: float | None = None
    compare_bench: Path | None = None
    rounds: int = 1
    engine: str = "auto"
    runner_bin: Path | None = None

    @property
    def host_mode(self) -> bool:
        """``--power none``: latency at this host's clock, projected to the board."""
        return self.power.lower() == "none"

    @property
    def serial(self) -> str | None:
        """The adb serial (None for the only device, or without ``--adb``)."""
        return None if self.adb in (None, "-") else self.adb

    def plan_settings(self) -> dict[str, Any]:
        """The measurement plan's settings: `plan` but its levels."""
        return {
            f.name: getattr(self.plan, f.name) for f in fields(self.plan) if f.name != "levels_khz"
        }

    def check_power_output(self) -> None:
        """``--power-output`` is ``levels`` or ``model``."""
        if self.power_output not in POWER_OUTPUTS:
            raise OptionError(f"must be levels or model, got {self.power_output!r}")

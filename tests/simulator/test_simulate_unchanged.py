"""``simulate --json`` on every shipped profile gives the recorded numbers bit for bit.

The files under ``tests/data/simulate_before`` were recorded before the lab was restructured
(issue 28); a refactor must not move a single figure. A change that means to alter the
simulation (a new default, a fixed bug) re-records them and says so in its commit.

They were recorded under the governor-step rule of the time, which issue 29 kept as
``--governor-step rerun`` when it made ``finish`` the default: the runs here name it, and
every recorded figure must come back bit for bit. The fields added since:
``governor_step`` must say ``rerun``; ``max_accuracy_loss`` and ``table_choice`` (issue 29's
accuracy bound, off unless asked for) must be None; ``nominal_energy_j`` (issue 33) is one
positive figure for every policy of a run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_runner import rt3lab

PROFILES = ("odroid-xu4", "pixel-3", "raspberry-pi-4", "rt3-paper")
DATA = Path(__file__).resolve().parents[1] / "data" / "simulate_before"


def _args(name: str) -> list[str]:
    profile = next(p for p in PROFILES if name.startswith(p + "-"))
    rest = name[len(profile) + 1 :]
    if rest == "exact-poisson":
        extra = ["--workload", "poisson:50", "--mode", "exact", "--capacity-mah", "2"]
    else:
        model, workload = rest.split("-")
        extra = ["--battery-model", model, "--workload", workload]
    return [
        "simulate",
        "--profile",
        profile,
        *extra,
        "--governor-step",
        "rerun",
        "--compare",
        "--json",
    ]


CASES = sorted(p.stem for p in DATA.glob("*.json"))


def test_every_shipped_profile_is_recorded():
    assert len(CASES) == 36


@pytest.mark.parametrize("name", CASES)
def test_simulate_json_unchanged(name):
    out = rt3lab(*_args(name))
    assert out.code == 0, out.stderr
    results = json.loads(out.stdout)
    assert [r.pop("governor_step") for r in results] == ["rerun"] * len(results)
    for field in ("max_accuracy_loss", "table_choice"):
        assert [r.pop(field) for r in results] == [None] * len(results)
    nominal = {r.pop("nominal_energy_j") for r in results}
    assert len(nominal) == 1 and nominal.pop() > 0
    assert results == json.loads((DATA / f"{name}.json").read_text())

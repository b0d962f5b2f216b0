"""Data flows one way: the simulator and meters never import torch; reports never import the
simulator; the CLI starts without importing heavy libraries."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(package: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        out[str(path.relative_to(ROOT))] = names
    return out


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("simulator", {"torch", "lab", "power_meter", "reports"}),
        ("power_meter", {"torch", "lab", "simulator", "reports", "device_profiles"}),
        ("device_profiles", {"torch", "lab", "simulator", "reports"}),
        ("reports", {"torch", "simulator", "lab"}),
        (
            "termout",
            {"torch", "lab", "simulator", "reports", "power_meter", "device_profiles", "pandas"},
        ),
    ],
)
def test_package_does_not_import(package, forbidden):
    offenders = {
        f: sorted(names & forbidden)
        for f, names in imported_modules(package).items()
        if names & forbidden
    }
    assert offenders == {}


def test_cli_starts_without_heavy_imports():
    code = (
        "import sys, lab.cli; lab.cli.build_app(); "
        "heavy = [m for m in ('torch', 'matplotlib', 'dask', 'transformers', 'pybamm') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""

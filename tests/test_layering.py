"""Data flows one way: the simulator and meters never import torch; reports never import the
simulator; lab's stages import only stages below them; no private name crosses a package;
each shared definition is written once; the CLI starts without importing heavy libraries."""

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
            "contracts",
            {"torch", "lab", "simulator", "reports", "power_meter", "device_profiles", "termout"},
        ),
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


# lab's stages in data-flow order: a stage may import itself and the stages before it.
LAB_STAGES = ("host", "model", "runtime", "profiling", "compression", "bench", "demo")
PACKAGES = ("contracts", "lab", "simulator", "power_meter", "device_profiles", "reports", "termout")


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """Every absolute import in ``path`` (module-level and inside functions)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.module, [a.name for a in node.names]))
    return out


def test_lab_stages_import_only_downward():
    upward = []
    for path in (ROOT / "lab").rglob("*.py"):
        own = path.relative_to(ROOT / "lab").parts[0]
        if own not in LAB_STAGES:
            continue  # lab/cli.py, lab/__init__.py: the top, above every stage
        for module, _ in _imports(path):
            parts = module.split(".")
            below = len(parts) < 2 or parts[1] not in LAB_STAGES
            if (
                parts[0] == "lab"
                and not below
                and (LAB_STAGES.index(parts[1]) > LAB_STAGES.index(own))
            ):
                upward.append(f"{path.relative_to(ROOT)} imports {module}")
    assert upward == []


def _package_of(module: str) -> tuple[str, ...]:
    """The unit a private name may not leave: lab's stage, or a whole top-level package."""
    parts = tuple(module.split("."))
    return parts[:2] if parts[0] == "lab" and len(parts) > 1 else parts[:1]


def test_no_private_name_crosses_a_package():
    crossing = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            own = _package_of(".".join(path.relative_to(ROOT).with_suffix("").parts))
            for module, names in _imports(path):
                if module.split(".")[0] not in PACKAGES or _package_of(module) == own:
                    continue
                crossing += [
                    f"{path.relative_to(ROOT)}: {module}.{n}"
                    for n in names
                    if n.startswith("_") and not n.startswith("__")
                ]
    assert crossing == []

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
LAB_STAGES = ("host", "model", "runtime", "profiling", "compression", "bench", "study", "demo")
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
            if (
                parts[0] == "lab"
                and len(parts) > 1
                and parts[1] in LAB_STAGES
                and LAB_STAGES.index(parts[1]) > LAB_STAGES.index(own)
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


# Each shared definition and the one module that defines it (the rest import it).
SHARED = {
    "cache_root": "contracts/cache.py",
    "CACHE_ENV": "contracts/cache.py",
    "ResultColumn": "contracts/results.py",
    "RESULT_COLUMNS": "contracts/results.py",
    "SWEEP_COLUMNS": "contracts/results.py",
    "SCALAR_COLUMNS": "contracts/results.py",
    "on_time": "contracts/results.py",
    "REFERENCE": "contracts/policies.py",
    "POLICIES": "contracts/policies.py",
    "BASELINES": "contracts/policies.py",
    "baselines_first": "contracts/policies.py",
    "compared_policies": "contracts/policies.py",
    "fixed_set_run": "contracts/policies.py",
    "WORKLOAD_SPECS": "contracts/workloads.py",
    "WORKLOAD_KINDS": "contracts/workloads.py",
    "workload_label": "contracts/workloads.py",
    "BATTERY_REGISTRY": "simulator/battery/__init__.py",
    "register_battery_model": "simulator/battery/__init__.py",
    "battery_models": "simulator/battery/__init__.py",
    "BUILT_IN_MODELS": "simulator/battery/__init__.py",
    "make_battery": "simulator/battery/__init__.py",
    "POLICY_REGISTRY": "simulator/policies.py",
    "register_policy": "simulator/policies.py",
    "policy_names": "simulator/policies.py",
}
# Names the copies went by before they moved: none may come back.
RETIRED = {"BATTERY_MODELS", "BatteryModelName", "RESULT_FIELDS", "WORKLOAD_CHOICES"}


def _module_level_names(tree: ast.Module) -> list[str]:
    """Names a module binds at its top level (assignments, defs, classes; also inside
    top-level if/try blocks), not names it imports."""
    out: list[str] = []
    todo = list(tree.body)
    while todo:
        node = todo.pop(0)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            out.append(node.name)
        elif isinstance(node, ast.Assign):
            out += [n.id for t in node.targets for n in ast.walk(t) if isinstance(n, ast.Name)]
        elif isinstance(node, ast.AnnAssign | ast.AugAssign) and isinstance(node.target, ast.Name):
            out.append(node.target.id)
        elif isinstance(node, ast.If | ast.Try | ast.With | ast.For):
            todo += [*node.body, *getattr(node, "orelse", []), *getattr(node, "finalbody", [])]
            todo += [s for h in getattr(node, "handlers", []) for s in h.body]
    return out


def _package_files() -> list[Path]:
    return [p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))]


def test_each_shared_definition_is_written_once():
    where: dict[str, list[str]] = {}
    for path in _package_files():
        for name in _module_level_names(ast.parse(path.read_text(encoding="utf-8"))):
            if name in SHARED or name in RETIRED:
                where.setdefault(name, []).append(str(path.relative_to(ROOT)))
    assert {n: where.get(n) for n in SHARED} == {n: [home] for n, home in SHARED.items()}
    assert {n: files for n, files in where.items() if n in RETIRED} == {}


def test_no_package_spells_a_shared_list_out_again():
    """A literal list of the same names (the baselines, the built-in policies or battery
    models, the workload kinds, a set of result columns) is a copy under another name."""
    from contracts import policies, results, workloads
    from simulator.battery import BUILT_IN_MODELS

    shared = {
        "BASELINES": (policies.BASELINES, "contracts/policies.py"),
        "POLICIES": (policies.POLICIES, "contracts/policies.py"),
        "WORKLOAD_KINDS": (workloads.WORKLOAD_KINDS, "contracts/workloads.py"),
        "BUILT_IN_MODELS": (BUILT_IN_MODELS, "simulator/battery/__init__.py"),
        "RESULT_COLUMNS": ([c.name for c in results.RESULT_COLUMNS], "contracts/results.py"),
        "SWEEP_COLUMNS": (list(results.SWEEP_COLUMNS), "contracts/results.py"),
        "SCALAR_COLUMNS": (results.SCALAR_COLUMNS, "contracts/results.py"),
    }
    copies = []
    for path in _package_files():
        rel = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Tuple | ast.List | ast.Set) or len(node.elts) < 3:
                continue
            if not all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
                continue
            values = {e.value for e in node.elts}
            copies += [
                f"{rel}:{node.lineno} spells out {name}"
                for name, (names, home) in shared.items()
                if values == set(names) and rel != home
            ]
    assert copies == []

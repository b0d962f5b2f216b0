"""Provenance of the figures recorded under ``docs/``: which code made them, and whether that
code has changed since.

Each recorded JSON is declared here with the command that records it and the source files
that produce its figures. ``stamp`` writes a ``recorded_from`` block into the JSON: the
commit it was recorded at and a digest of every declared source file. ``check`` recomputes
the digests and lists the JSONs whose sources changed since (naming the files), or that were
never stamped: those figures are stale and must be recorded again. ``make docs-check`` runs
``check``; ``python -m lab.bench.provenance stamp docs/NAME.json`` follows a recording.

Inputs that are data (a bundle, a profile) are named in the command, not digested: the
figures' code is what this guards.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
KEY = "recorded_from"

_ENGINE = ("lab/runtime/**/*.py", "lab/runtime/**/*.c", "lab/runtime/**/*.h", "lab/host/*.py")
_RUNTIME_BENCH = (
    *_ENGINE,
    "lab/bench/runtime*.py",
    "lab/bench/anchors.py",
    "lab/bench/layer_forms.py",
    "lab/bench/executorch.py",
    "lab/bench/source.py",
    "lab/model/transformer.py",
)
_DISTILL_BENCH = ("lab/compression/**/*.py", "lab/bench/distill.py", "lab/model/**/*.py")
_SIMULATOR = ("simulator/**/*.py", "device_profiles/**/*.py", "contracts/*.py")


@dataclass(frozen=True)
class Recorded:
    """A recorded JSON: how it is recorded and the source globs its figures come from."""

    command: str
    sources: tuple[str, ...]


RECORDED: dict[str, Recorded] = {
    "demo-headline.json": Recorded(
        "rt3lab demo --docs docs",
        (
            "lab/**/*.py",
            "lab/**/*.c",
            "lab/**/*.h",
            *_SIMULATOR,
            "device_profiles/**/*.yaml",
            "reports/**/*.py",
        ),
    ),
    "compress-quick-evaluate.json": Recorded(
        "rt3lab evaluate --bundle QUICK_BUNDLE --json",
        ("lab/model/**/*.py", "lab/compression/**/*.py", *_ENGINE),
    ),
    "runtime-bench-quick.json": Recorded(
        "rt3lab bench runtime --bundle QUICK_BUNDLE --threads 1,2 --json",
        _RUNTIME_BENCH,
    ),
    "runtime-bench-default.json": Recorded(
        "rt3lab bench runtime --bundle DEFAULT_BUNDLE --threads 1,2 --json", _RUNTIME_BENCH
    ),
    "runtime-bench-width-quick.json": Recorded(
        "rt3lab bench runtime --bundle SCHEMES_DIR/bundles/width --no-anchors --no-layers --json",
        (*_RUNTIME_BENCH, "lab/bench/scheme_variants.py"),
    ),
    "runtime-bench-depth-quick.json": Recorded(
        "rt3lab bench runtime --bundle SCHEMES_DIR/bundles/depth --no-anchors --no-layers --json",
        (*_RUNTIME_BENCH, "lab/bench/scheme_variants.py"),
    ),
    "runtime-bench-synthetic-small.json": Recorded(
        "rt3lab bench runtime --synthetic small --threads 1,2 --json", _RUNTIME_BENCH
    ),
    "runner-bench-quick.json": Recorded(
        "rt3lab bench runner --bundle QUICK_BUNDLE --json",
        (*_ENGINE, "lab/bench/runner.py", "lab/bench/source.py"),
    ),
    "runner-bench-distilbert.json": Recorded(
        "rt3lab bench runner --synthetic distilbert --rounds 5 --runs 30 --json",
        (*_ENGINE, "lab/bench/runner.py", "lab/bench/source.py"),
    ),
    "search-bench-quick.json": Recorded(
        "rt3lab bench search --budget quick --json",
        ("lab/compression/**/*.py", "lab/bench/search.py", "lab/model/**/*.py", *_ENGINE),
    ),
    "search-bench-default.json": Recorded(
        "rt3lab bench search --budget default --json",
        ("lab/compression/**/*.py", "lab/bench/search.py", "lab/model/**/*.py", *_ENGINE),
    ),
    "distill-ablation-quick.json": Recorded(
        "rt3lab bench distill --budget quick --deadlines dense-top --json", _DISTILL_BENCH
    ),
    "distill-ablation-quick-scaled.json": Recorded(
        "rt3lab bench distill --budget quick --json", _DISTILL_BENCH
    ),
    "distill-ablation-default.json": Recorded(
        "rt3lab bench distill --budget default --deadlines dense-top --json", _DISTILL_BENCH
    ),
    "schemes-quick.json": Recorded(
        "rt3lab study schemes --out docs/schemes --json > docs/schemes-quick.json",
        (
            "lab/**/*.py",
            "lab/**/*.c",
            "lab/**/*.h",
            *_SIMULATOR,
            "device_profiles/**/*.yaml",
            "reports/schemes_map.py",
            "reports/pareto.py",
            "reports/axes.py",
        ),
    ),
    "deadlines-quick.json": Recorded(
        "rt3lab study deadlines --bundle QUICK_BUNDLE --points 8 --out docs/deadlines --json",
        (
            "lab/**/*.py",
            "lab/**/*.c",
            "lab/**/*.h",
            *_SIMULATOR,
            "device_profiles/**/*.yaml",
            "reports/deadline_map.py",
        ),
    ),
    "compress-quick-reproducible.json": Recorded(
        "python scripts/reproducible.py --quick",
        ("scripts/reproducible.py", "lab/model/**/*.py", "lab/compression/**/*.py", *_ENGINE),
    ),
    "simulator-bench.json": Recorded("rt3lab bench simulator --json", _SIMULATOR),
    "meter-bench.json": Recorded(
        "rt3lab bench meter --json", ("power_meter/ppk2.py", "power_meter/bench.py")
    ),
    "sweep-bench.json": Recorded("rt3lab bench sweep --json", _SIMULATOR),
    "contention-micro.json": Recorded(
        "python scripts/contention.py --micro 30", ("scripts/contention.py", "lab/host/threads.py")
    ),
}


class ProvenanceError(ValueError):
    """A recorded JSON that is not declared, or not a JSON object."""


def source_files(globs: tuple[str, ...], root: Path = ROOT) -> list[Path]:
    """The files the globs name below ``root``, sorted, without caches."""
    found = {p for g in globs for p in root.glob(g) if p.is_file()}
    return sorted(p for p in found if "__pycache__" not in p.parts)


def digests(globs: tuple[str, ...], root: Path = ROOT) -> dict[str, str]:
    """Each declared source file's SHA-256 (first 16 hex digits), by path below ``root``."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()[:16]
        for p in source_files(globs, root)
    }


def _commit(root: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True
        )
    except OSError:
        return "unknown"
    return out.stdout.strip() or "unknown"


def _declared(path: Path, table: dict[str, Recorded]) -> Recorded:
    if path.name not in table:
        raise ProvenanceError(
            f"{path}: not declared in lab.bench.provenance.RECORDED (name its command and sources)"
        )
    return table[path.name]


def _read(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ProvenanceError(f"{path}: expected a JSON object")
    return data


def stamp(
    path: Path, root: Path = ROOT, table: dict[str, Recorded] | None = None
) -> dict[str, Any]:
    """Write the ``recorded_from`` block into the recorded JSON at ``path``; return it."""
    rec = _declared(path, RECORDED if table is None else table)
    data = _read(path)
    data[KEY] = {
        "commit": _commit(root),
        "command": rec.command,
        "sources": list(rec.sources),
        "files": digests(rec.sources, root),
    }
    path.write_text(json.dumps(data, indent=2) + "\n")
    return data[KEY]


def staleness(path: Path, root: Path = ROOT, table: dict[str, Recorded] | None = None) -> str:
    """Why the figures in ``path`` are stale (changed, added or removed sources; never
    stamped), or ``""`` when they were recorded on the code as it is."""
    rec = _declared(path, RECORDED if table is None else table)
    block = _read(path).get(KEY)
    if not isinstance(block, dict) or not isinstance(block.get("files"), dict):
        return "never stamped with its sources"
    then, now = block["files"], digests(rec.sources, root)
    changed = sorted(f for f in now.keys() & then.keys() if now[f] != then[f])
    added, removed = sorted(now.keys() - then.keys()), sorted(then.keys() - now.keys())
    parts = [
        f"{label}: {', '.join(files[:4])}{' ...' if len(files) > 4 else ''}"
        for label, files in (("changed", changed), ("added", added), ("removed", removed))
        if files
    ]
    if not parts:
        return ""
    return f"recorded at {str(block.get('commit', 'unknown'))[:10]}; since then " + "; ".join(parts)


def check(docs: Path = ROOT / "docs", root: Path = ROOT) -> dict[str, str]:
    """``staleness`` of every declared JSON present under ``docs`` (stale ones only)."""
    out = {
        p.name: "not declared in lab.bench.provenance.RECORDED"
        for p in sorted(docs.glob("*.json"))
        if p.name not in RECORDED
    }
    for name in RECORDED:
        path = docs / name
        if path.is_file() and (why := staleness(path, root)):
            out[name] = why
    return out


def main(argv: list[str] | None = None) -> int:
    """``check [DOCS]`` (exit 1 when any figure is stale) or ``stamp FILE...``."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["stamp"] and len(args) > 1:
        for name in args[1:]:
            block = stamp(Path(name))
            print(f"stamped {name}: {len(block['files'])} source files at {block['commit'][:10]}")
        return 0
    if args[:1] == ["check"]:
        stale = check(Path(args[1]) if len(args) > 1 else ROOT / "docs")
        for name, why in stale.items():
            how = f"; re-record: {RECORDED[name].command}" if name in RECORDED else ""
            print(f"stale: docs/{name}: {why}{how}")
        if not stale:
            print("docs-check: every recorded figure matches the code that made it")
        return 1 if stale else 0
    print("usage: python -m lab.bench.provenance check [DOCS] | stamp FILE...", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())

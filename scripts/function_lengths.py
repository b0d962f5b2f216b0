"""Functions over N lines (default 100) in the project's packages, longest first, and their
count: `python scripts/function_lengths.py [N]` (tests and the virtual environment left out).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP = {".venv", "tests", "build", "scripts"}


def long_functions(limit: int = 100, root: Path = ROOT) -> list[tuple[int, str]]:
    """(lines, "path:line name") of every function longer than ``limit`` lines."""
    rows = []
    for path in sorted(root.rglob("*.py")):
        if SKIP & set(path.relative_to(root).parts):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > limit:
                    rows.append((lines, f"{path.relative_to(root)}:{node.lineno} {node.name}"))
    return sorted(rows, reverse=True)


if __name__ == "__main__":
    found = long_functions(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
    for lines, where in found:
        print(lines, where)
    print(f"{len(found)} functions over the limit")

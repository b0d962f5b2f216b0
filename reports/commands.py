"""The commands that made a run's files, shown once, with short paths.

``commands.json`` maps each artefact (``results.json``, ``profile.yaml``...) to the
command line that wrote it, with the absolute paths it ran with. A report shows each
command once, in its own section, and every table refers to it by artefact: a path inside
the run directory becomes relative to it (``profile.yaml``), one beside it ``../NAME``, and
a directory that the others share (the demo's cache) is named once as ``$CACHE`` (or
``$DIR`` when it is not a cache).

>>> short = short_commands({"results.json": "rt3lab simulate --profile /r/run/p.yaml "
...     "--bundle /home/u/.cache/rt3lab/demo/c-1/bundle", "evaluate.json": "rt3lab evaluate "
...     "--bundle /home/u/.cache/rt3lab/demo/c-1/bundle --set /home/u/.cache/rt3lab/demo/c-1/x"},
...     "/r/run")
>>> short.commands["results.json"]
'rt3lab simulate --profile p.yaml --bundle $CACHE/bundle'
>>> short.prefixes
{'$CACHE': '/home/u/.cache/rt3lab/demo/c-1'}
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

# An absolute path: from a "/" not inside a word, up to whitespace, a quote or a bracket.
_PATH = re.compile(r"(?<![\w./$~-])/[^\s'\"`,()\[\]{}]+")
# A shared directory is named only when it saves this many characters at least.
_MIN_PREFIX = 20


@dataclass(frozen=True)
class Commands:
    """Each artefact's command with short paths, and what each ``$NAME`` stands for."""

    commands: dict[str, str] = field(default_factory=dict)
    prefixes: dict[str, str] = field(default_factory=dict)


def _inside(path: str, roots: list[str]) -> str | None:
    """``path`` relative to the run directory (or ``../X`` beside it), else None."""
    for root in roots:
        if path == root:
            return "."
        if path.startswith(root + "/"):
            return path[len(root) + 1 :]
        parent = os.path.dirname(root)
        if parent not in ("", "/") and path.startswith(parent + "/"):
            return "../" + path[len(parent) + 1 :]
    return None


def _shared_dir(paths: list[str]) -> str | None:
    """The directory the paths share, when naming it saves enough; else None."""
    dirs = sorted({p if len(paths) == 1 else os.path.dirname(p) for p in paths})
    if not dirs:
        return None
    common = os.path.commonpath(dirs) if len(paths) > 1 else os.path.dirname(dirs[0])
    if len(PurePosixPath(common).parts) < 3 or len(common) < _MIN_PREFIX:
        return None
    return common


def short_commands(commands: dict[str, str], run_dir: str | Path) -> Commands:
    """``commands`` with every absolute path shortened (see the module docstring)."""
    given = Path(run_dir)
    roots = list(dict.fromkeys(str(p) for p in (given.absolute(), given.resolve())))
    elsewhere = sorted(
        {p for cmd in commands.values() for p in _PATH.findall(cmd) if _inside(p, roots) is None}
    )
    common = _shared_dir(elsewhere)
    prefixes = {}
    if common is not None:
        name = "$CACHE" if ".cache" in PurePosixPath(common).parts else "$DIR"
        prefixes[name] = common

    def shorten(match: re.Match[str]) -> str:
        path = match.group(0)
        inside = _inside(path, roots)
        if inside is not None:
            return inside
        for name, prefix in prefixes.items():
            if path == prefix or path.startswith(prefix + "/"):
                return name + path[len(prefix) :]
        return path

    return Commands({k: _PATH.sub(shorten, v) for k, v in commands.items()}, prefixes)

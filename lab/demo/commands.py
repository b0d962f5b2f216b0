"""The ``rt3lab ...`` command line that does what an options object asks: the demo calls
each step's function with an options object and records this line in ``commands.json``, so
a user can type it to make the same artefact.

Each field of the options dataclass is an option of the same name (``per_round`` is
``--per-round``; a trailing ``_s``, seconds, is dropped: ``time_cap_s`` is ``--time-cap``).
Only the fields that differ from their default are written, plus those named in ``always``;
a nested dataclass (``ProfileOptions.plan``) contributes its own fields; ``True`` is
``--name`` and ``False`` ``--no-name``; a list or tuple is comma-separated.

>>> from dataclasses import dataclass
>>> @dataclass
... class Opts:
...     bundle: str
...     per_round: int = 3
...     time_cap_s: float = 10.0
...     anchors: bool = True
>>> command_line("rt3lab bench x", Opts("my b", per_round=2, anchors=False), tail=("--json",))
"rt3lab bench x --bundle 'my b' --per-round 2 --no-anchors --json"
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import MISSING, fields, is_dataclass
from typing import Any


def command_line(
    prog: str,
    options: Any,
    always: tuple[str, ...] = (),
    rename: Mapping[str, str] | None = None,
    tail: tuple[str, ...] = (),
) -> str:
    """``prog`` (e.g. ``rt3lab profile``) with the options ``options`` sets, then ``tail``;
    ``rename`` maps a field to its option where the names differ (``runner_bin``:
    ``runner``)."""
    words = [*prog.split(), *option_words(options, None, always, rename or {}), *tail]
    return shlex.join(words)


def option_words(
    options: Any,
    defaults: Mapping[str, Any] | None,
    always: tuple[str, ...],
    rename: Mapping[str, str],
) -> list[str]:
    """The options (as argv words) of the fields of ``options`` that differ from
    ``defaults`` (None: the dataclass's own field defaults) or are named in ``always``."""
    if defaults is None:
        defaults = _field_defaults(options)
    words: list[str] = []
    for f in fields(options):
        value = getattr(options, f.name)
        if is_dataclass(value) and not isinstance(value, type):
            default = defaults.get(f.name)
            inner = None if default is None else _field_values(default)
            words += option_words(value, inner, always, rename)
            continue
        unchanged = f.name in defaults and value == defaults[f.name]
        if value is None or (unchanged and f.name not in always):
            continue
        name = rename.get(f.name) or f.name.removesuffix("_s").replace("_", "-")
        if isinstance(value, bool):
            words.append(f"--{name}" if value else f"--no-{name}")
        elif isinstance(value, list | tuple):
            words += [f"--{name}", ",".join(map(str, value))]
        else:
            words += [f"--{name}", str(value)]
    return words


def _field_values(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


def _field_defaults(options: Any) -> dict[str, Any]:
    """Each field's default (its factory's value), for the fields that have one."""
    out: dict[str, Any] = {}
    for f in fields(options):
        if f.default is not MISSING:
            out[f.name] = f.default
        elif f.default_factory is not MISSING:
            out[f.name] = f.default_factory()
    return out

"""Strict JSON, in and out: one set of rules for every JSON file rt3lab reads and prints.

Read (``loads``, ``read``): RFC 8259 JSON only. ``NaN``, ``Infinity`` and a number too large
for a double (``1e400``) are refused, as is an integer outside 64 bits; a key given twice in
one object is refused (Python would keep the last, rt3lab's C engine the first); a UTF-8
byte-order mark is refused unless the format allows it; nesting is bounded (a value nested
N deep counts N, the top level 1), so a deep file is one error line, not a RecursionError.
Each error names the source and what was wrong.

Print (``dumps``): ``allow_nan=False`` always; a non-finite float becomes ``null`` and a
warning names its field and why, so ``--json`` output is JSON any parser accepts.

>>> loads('{"a": [1, 2.5, null]}', "x.json", ValueError)
{'a': [1, 2.5, None]}
>>> loads('{"a": 1, "a": 2}', "x.json", ValueError)
Traceback (most recent call last):
...
ValueError: x.json: key 'a' appears twice in one object
>>> loads('[NaN]', "x.json", ValueError)
Traceback (most recent call last):
...
ValueError: x.json: NaN is not JSON (a number must be finite)
>>> loads('[[[1]]]', "x.json", ValueError, max_depth=3)
Traceback (most recent call last):
...
ValueError: x.json: nested deeper than 3 levels
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

from contracts.files import read_bytes

MAX_DEPTH = 64
BOM = b"\xef\xbb\xbf"
INT64 = 1 << 63


class NonFiniteWarning(UserWarning):
    """``dumps`` printed a NaN or an infinity as null."""


def loads(
    data: str | bytes,
    source: str,
    error: type[ValueError],
    max_depth: int = MAX_DEPTH,
    bom: bool = False,
) -> Any:
    """Parse ``data`` (text, or UTF-8 bytes) by the module's rules; ``error`` names
    ``source`` and what was wrong."""
    if isinstance(data, bytes):
        if data.startswith(BOM) and bom:
            data = data[len(BOM) :]
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise error(
                f"{source}: not UTF-8 JSON (byte 0x{exc.object[exc.start]:02x} at offset "
                f"{exc.start})"
            ) from None
    else:
        text = data[1:] if data.startswith("\ufeff") and bom else data
    if text.startswith("\ufeff"):
        raise error(f"{source}: starts with a byte-order mark (EF BB BF); expected plain JSON")

    def constant(name: str) -> Any:
        raise error(f"{source}: {name} is not JSON (a number must be finite)")

    def number(raw: str) -> float:
        value = float(raw)
        if not math.isfinite(value):
            raise error(f"{source}: number {raw} is too large for a double")
        return value

    def integer(raw: str) -> int:
        if len(raw.lstrip("-")) > 19 or not -INT64 <= int(raw) < INT64:
            raise error(f"{source}: integer {raw[:24]}... is outside 64 bits")
        return int(raw)

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise error(f"{source}: key {key!r} appears twice in one object")
            out[key] = value
        return out

    try:
        doc = json.loads(
            text,
            object_pairs_hook=unique,
            parse_constant=constant,
            parse_float=number,
            parse_int=integer,
        )
    except json.JSONDecodeError as exc:
        raise error(
            f"{source}: not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    except RecursionError:
        raise error(f"{source}: nested deeper than {max_depth} levels") from None
    if depth(doc) > max_depth:
        raise error(f"{source}: nested deeper than {max_depth} levels")
    return doc


def depth(doc: Any) -> int:
    """How deep ``doc`` nests: 1 for a scalar or an empty list or object (no recursion).

    >>> depth(1), depth([]), depth({"a": [1, {"b": 2}]})
    (1, 1, 4)
    """
    deepest = 0
    stack = [(doc, 1)]
    while stack:
        value, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(value, dict):
            stack.extend((v, level + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, level + 1) for v in value)
    return deepest


def read(
    path: str | Path,
    max_bytes: int,
    error: type[ValueError],
    max_depth: int = MAX_DEPTH,
    bom: bool = False,
) -> Any:
    """The JSON of the regular file ``path`` (at most ``max_bytes``), by ``loads``'s rules."""
    return loads(read_bytes(path, max_bytes, error), str(path), error, max_depth, bom)


def finite_or_null(doc: Any) -> tuple[Any, list[str]]:
    """``doc`` with every NaN or infinity replaced by None, and where each one was.

    >>> finite_or_null({"a": [1.0, float("nan")], "b": float("inf")})
    ({'a': [1.0, None], 'b': None}, ['a[1] (nan)', 'b (inf)'])
    """
    found: list[str] = []

    def clean(value: Any, where: str) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            found.append(f"{where or '<top>'} ({value})")
            return None
        if isinstance(value, dict):
            return {k: clean(v, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return value

    return clean(doc, ""), found


def dumps(doc: Any, **kwargs: Any) -> str:
    """``json.dumps`` for ``--json``: never NaN or Infinity; each one becomes null, with a
    ``NonFiniteWarning`` that names the field.

    >>> dumps({"x": 1.5})
    '{"x": 1.5}'
    """
    clean, found = finite_or_null(doc)
    if found:
        warnings.warn(
            f"--json: {', '.join(found)} printed as null: JSON has no NaN or infinity",
            NonFiniteWarning,
            stacklevel=2,
        )
    return json.dumps(clean, allow_nan=False, **kwargs)

"""Load and validate device profiles from YAML, with errors that name file, field and value."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from device_profiles.schema import DeviceProfile


class ProfileError(ValueError):
    """A profile that cannot be read or does not validate. The message names what was wrong."""


def shipped_profiles() -> dict[str, Path]:
    """Names and paths of the profiles that ship with rt3lab."""
    root = resources.files("device_profiles") / "boards"
    out: dict[str, Path] = {}
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            out[entry.name[: -len(".yaml")]] = Path(str(entry))
    return out


def resolve_profile_path(name_or_path: str | Path) -> Path:
    """A shipped profile's name, or a path to a YAML file, as a path."""
    text = str(name_or_path)
    shipped = shipped_profiles()
    if text in shipped:
        return shipped[text]
    path = Path(text)
    if path.suffix in (".yaml", ".yml") or path.exists() or "/" in text:
        if not path.exists():
            raise ProfileError(f"{path}: no such profile file")
        return path
    raise ProfileError(f"unknown profile {text!r}: not a shipped profile {sorted(shipped)}")


def load_profile(name_or_path: str | Path) -> DeviceProfile:
    """Load, validate and return a profile (a shipped name or a YAML path)."""
    path = resolve_profile_path(name_or_path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    return parse_profile(text, source=str(path))


def parse_profile(text: str, source: str = "<string>") -> DeviceProfile:
    """Validate a profile given as YAML text; ``source`` names it in errors."""
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown place"
        raise ProfileError(f"{source}: YAML syntax error at {where}: {exc.problem}") from exc
    except yaml.YAMLError as exc:
        raise ProfileError(f"{source}: YAML error: {exc}") from exc
    if not isinstance(data, dict):
        raise ProfileError(
            f"{source}: expected a mapping at the top level, got {type(data).__name__}"
        )
    return profile_from_dict(data, source=source)


def profile_from_dict(data: dict[str, Any], source: str = "<dict>") -> DeviceProfile:
    """Validate a profile given as a dict."""
    try:
        return DeviceProfile.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(format_validation_error(exc, source)) from None


def format_validation_error(exc: ValidationError, source: str) -> str:
    """One line per problem: ``file: field.path: message, got value``."""
    errors = [(err, _field_path(err["loc"])) for err in exc.errors()]
    paths = [path for _, path in errors]
    lines = []
    for err, path in errors:
        # A provenance may be a key (str) or a record: when the record branch has its own
        # errors deeper down, the "not a string" alternative is noise.
        if err["type"] == "string_type" and any(p.startswith(path + ".") for p in paths):
            continue
        msg = _message(err)
        got = err.get("input")
        shown = (
            "" if err["type"] in ("missing",) or isinstance(got, dict | list) else f", got {got!r}"
        )
        lines.append(f"{source}: {path or '<profile>'}: {msg}{shown}")
    return "\n".join(lines)


def _field_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("measured", "published", "modelled", "str") or str(part).startswith(
            ("function-", "tagged-union[")
        ):
            continue  # discriminated-union tags add nothing for the reader
        else:
            out += f".{part}" if out else str(part)
    return out


def _message(err: Any) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    bounds = {
        "greater_than": (">", "gt"),
        "greater_than_equal": (">=", "ge"),
        "less_than": ("<", "lt"),
        "less_than_equal": ("<=", "le"),
    }
    if kind in bounds:
        op, key = bounds[kind]
        limit = ctx.get(key)
        shown = f"{limit:g}" if isinstance(limit, int | float) else str(limit)
        return f"must be {op} {shown}"
    if kind == "finite_number":
        return "must be a finite number"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required field is missing"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    return str(err["msg"])


def dump_profile(profile: DeviceProfile) -> str:
    """The profile as YAML text that loads back to an equal profile."""
    data = profile.model_dump(mode="json", exclude_none=True)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)

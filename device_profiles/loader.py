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


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping in a YAML document gives the same key twice."""


class NestingError(yaml.composer.ComposerError):
    """A YAML document nests deeper than ``MAX_YAML_DEPTH``."""


# YAML files rt3lab reads (profiles, sweeps) are a few KiB and nest a few levels deep.
MAX_YAML_BYTES = 4 << 20
MAX_YAML_DEPTH = 64


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate mapping keys instead of keeping the last,
    and nesting deeper than ``MAX_YAML_DEPTH`` (PyYAML composes nodes recursively: a deep
    file would end in a RecursionError)."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        """Compose one node, counting how deep it lies."""
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise NestingError(
                    None, None, f"nested deeper than {MAX_YAML_DEPTH} levels",
                    self.peek_event().start_mark,
                )  # fmt: skip
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """Build a mapping; a key seen twice raises ``DuplicateKeyError`` at its line."""
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: SafeLoader reports it below
                continue
            if duplicate:
                raise DuplicateKeyError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str, source: str, error: type[ValueError] = ValueError) -> Any:
    r"""``yaml.safe_load`` with duplicate keys refused; errors are one ``error`` line that
    names ``source``, the line and column, and the problem.

    >>> load_yaml("a: 1\nb: 2\n", "x.yaml")
    {'a': 1, 'b': 2}
    >>> load_yaml("a: 1\na: 2\n", "x.yaml")
    Traceback (most recent call last):
    ...
    ValueError: x.yaml: YAML error at line 2, column 1: duplicate key 'a'
    """
    try:
        return yaml.load(text, Loader=UniqueKeyLoader)  # a SafeLoader: no objects
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown place"
        kind = (
            "YAML error"
            if isinstance(exc, DuplicateKeyError | NestingError)
            else "YAML syntax error"
        )
        problem = " ".join(str(exc.problem or exc.context or "invalid YAML").split())
        raise error(f"{source}: {kind} at {where}: {problem}") from None
    except yaml.YAMLError as exc:
        raise error(f"{source}: YAML error: {' '.join(str(exc).split())}") from None
    except RecursionError:  # past the composer's bound: the constructor's own recursion
        raise error(f"{source}: YAML error: nested too deeply") from None
    except ValueError as exc:  # an integer of over 4,300 digits, which int() refuses
        raise error(f"{source}: YAML error: {' '.join(str(exc).split())}") from None


def read_text_file(
    path: Path, error: type[ValueError] = ValueError, max_bytes: int = MAX_YAML_BYTES
) -> str:
    """A file's UTF-8 text; an unreadable, binary or special file (a FIFO, a device) or one
    over ``max_bytes`` is one ``error`` line naming it."""
    from contracts.files import read_text

    return read_text(path, max_bytes, error)


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
    return parse_profile(read_text_file(path, ProfileError), source=str(path))


def parse_profile(text: str, source: str = "<string>") -> DeviceProfile:
    """Validate a profile given as YAML text; ``source`` names it in errors."""
    data = load_yaml(text, source, ProfileError)
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
    """One line: ``file: field.path: message, got value``, problems joined by ``; ``."""
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
        text = repr(got) if len(repr(got)) <= 60 else f"{repr(got)[:57]}..."  # 10**400
        shown = (
            "" if err["type"] in ("missing",) or isinstance(got, dict | list) else f", got {text}"
        )
        lines.append(f"{source}: {path or '<profile>'}: {msg}{shown}")
    return "; ".join(" ".join(line.split()) for line in lines)


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

"""Registries: where the simulator's plug-in parts (battery models, policies) are found by
name, in the order they were registered, instead of an if-chain over known names.

>>> sizes = Registry("size")
>>> sizes.add("small", 1)
>>> sizes.get("small"), sizes.names()
(1, ('small',))
>>> sizes.get("large")
Traceback (most recent call last):
...
simulator.errors.SimulatorInputError: size: unknown 'large', expected one of small
"""

from __future__ import annotations

from typing import Generic, TypeVar

from simulator.errors import SimulatorInputError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named parts of one kind (``what``, as error messages name it)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._parts: dict[str, T] = {}

    def add(self, name: str, part: T, replace: bool = False) -> None:
        """Register ``part`` as ``name``; a name already taken needs ``replace``."""
        if not name or not isinstance(name, str) or ":" in name:
            raise ValueError(f"{self.what}: a name must be a non-empty string without ':'")
        if name in self._parts and not replace:
            raise ValueError(f"{self.what} {name!r} is already registered")
        self._parts[name] = part

    def remove(self, name: str) -> None:
        """Forget ``name`` (a test's toy part, once the test is done)."""
        self._parts.pop(name, None)

    def get(self, name: str) -> T:
        """The part registered as ``name``; ``SimulatorInputError`` naming the known ones."""
        part = self._parts.get(name)
        if part is None:
            raise SimulatorInputError(
                f"{self.what}: unknown {name!r}, expected one of {', '.join(self._parts)}"
            )
        return part

    def names(self) -> tuple[str, ...]:
        """The registered names, in registration order."""
        return tuple(self._parts)

    def parts(self) -> tuple[T, ...]:
        """The registered parts, in registration order."""
        return tuple(self._parts.values())

    def __contains__(self, name: object) -> bool:
        return name in self._parts

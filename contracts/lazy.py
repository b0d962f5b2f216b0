"""Lazy package exports (PEP 562): a package's public names imported on first use, so that
importing the package (as the CLI does at start-up) stays light.

A package keeps a table ``{public name: defining module}`` and binds what
``lazy_exports`` returns as its module-level ``__getattr__`` and ``__dir__``:

>>> import sys, types
>>> pkg = types.ModuleType("pkg")
>>> sys.modules["pkg"] = pkg
>>> pkg.__getattr__, pkg.__dir__ = lazy_exports("pkg", {"cache_root": "contracts.cache"})
>>> pkg.cache_root.__name__, "cache_root" in dir(pkg)
('cache_root', True)
>>> del sys.modules["pkg"]
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib import import_module
from typing import Any


def lazy_exports(
    package: str, table: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: a name in ``table`` is imported from
    its module on first use and kept in the package; any other is an AttributeError."""

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(table))

    return __getattr__, __dir__

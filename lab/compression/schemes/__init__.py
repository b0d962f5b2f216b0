"""The reconfiguration schemes ``rt3lab compress --scheme`` builds, one module each.

A scheme (``contracts.schemes.SCHEMES``) is built by the module
``lab.compression.schemes.<name>`` (``-`` read as ``_``: ``early-exit`` is
``schemes/early_exit.py``), which defines

```python
def build(task: Task, profile: DeviceProfile, opts: CompressOptions,
          reporter: Reporter | None = None) -> Path: ...
```

taking what ``compress`` takes (:func:`lab.compression.pipeline.compress`) and returning
the bundle's path. The bundle holds one variant per DVFS level of the profile, all sets of
one ``ReconfigurableModel`` (a switch selects, it does not reload), and records the scheme
in ``bundle.json``'s top-level ``scheme`` (``Bundle.scheme``). Adding a scheme is adding
its module: nothing here names it. Until the module exists, :func:`scheme_builder` refuses
the scheme in one line (``SchemeError``, exit 2).

>>> scheme_builder("rt3").__name__
'build'
>>> module_name("early-exit")
'lab.compression.schemes.early_exit'
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contracts.schemes import SchemeError, check_scheme

if TYPE_CHECKING:
    from device_profiles import DeviceProfile
    from lab.compression.options import CompressOptions, Reporter
    from lab.compression.tasks import Task

SchemeBuilder = Callable[["Task", "DeviceProfile", "CompressOptions", "Reporter | None"], Path]


def module_name(scheme: str) -> str:
    """The module that builds ``scheme``."""
    return f"{__name__}.{check_scheme(scheme).replace('-', '_')}"


def scheme_builder(scheme: str) -> SchemeBuilder:
    """The ``build`` function of ``scheme``'s module; :class:`SchemeError` (one line) for an
    unknown scheme or one whose module is not written yet."""
    import importlib

    name = module_name(scheme)
    try:
        module: Any = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        raise SchemeError(f"--scheme {scheme}: this scheme is not built yet") from None
    build = getattr(module, "build", None)
    if not callable(build):
        raise SchemeError(f"--scheme {scheme}: {name} defines no build()")
    return build

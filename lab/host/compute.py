"""Where training, search and scoring compute: ``--device cpu|cuda|auto``.

``compute_device(spec)`` sets the device for a block. The training and scoring loops
(``lab.model.training``, ``lab.compression.finetune``) move the model, its batches and its
masks there for the loop and move the model back afterwards, so everything between the
loops (pruning, pattern fitting, the search's bookkeeping, the bundle) sees CPU tensors
as before. On the CPU every move is a no-op: CPU results are unchanged.

>>> resolve_device("cpu")
device(type='cpu')
>>> with compute_device("cpu") as dev:
...     current_device() == dev
True
>>> current_device() is None
True
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn

DEVICES = ("auto", "cpu", "cuda")
_CURRENT: contextvars.ContextVar[Any] = contextvars.ContextVar("rt3lab_device", default=None)


class DeviceError(ValueError):
    """A ``--device`` that is unknown or not available here; the message says which."""


def resolve_device(spec: str) -> torch.device:
    """``auto``: CUDA when torch sees a GPU, else the CPU; ``cuda[:N]`` must be available."""
    import torch

    name = spec.strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            build = "built without CUDA" if torch.version.cuda is None else "sees no GPU"
            raise DeviceError(
                f"--device {spec}: CUDA is not available (torch {torch.__version__} {build}); "
                "use --device cpu or auto"
            )
        try:
            dev = torch.device(name)
        except RuntimeError:
            raise DeviceError(f"--device {spec}: expected cuda or cuda:N") from None
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(
                f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) here"
            )
        return dev
    raise DeviceError(f"--device {spec}: expected one of {', '.join(DEVICES)} (or cuda:N)")


@contextlib.contextmanager
def compute_device(spec: str | torch.device | None) -> Iterator[torch.device | None]:
    """Run training and scoring loops in the block on ``spec`` (None: where the model is)."""
    import torch

    dev = None if spec is None else spec if isinstance(spec, torch.device) else None
    if spec is not None and dev is None:
        dev = resolve_device(str(spec))
    token = _CURRENT.set(dev)
    try:
        yield dev
    finally:
        _CURRENT.reset(token)


def current_device() -> torch.device | None:
    """The device set by the innermost ``compute_device`` block, or None."""
    return _CURRENT.get()


def module_device(model: nn.Module) -> torch.device:
    """The device of a module's first parameter (the CPU for a module without any)."""
    import torch

    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def to_device(obj: Any, device: torch.device) -> Any:
    """Tensors (also inside dicts, lists and tuples) on ``device``; anything else as is."""
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(to_device(v, device) for v in obj)
    return obj


@contextlib.contextmanager
def on_compute_device(model: nn.Module) -> Iterator[torch.device]:
    """Move ``model`` to the current compute device for the block, and back after it.

    Yields the device the loop should put its batches and masks on (the model's own when
    no ``compute_device`` is set).
    """
    home = module_device(model)
    dev = current_device() or home
    if dev != home:
        model.to(dev)
    try:
        yield dev
    finally:
        if dev != home:
            model.to(home)

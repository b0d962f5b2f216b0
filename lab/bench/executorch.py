"""The ``executorch`` anchor: the dense model on ExecuTorch's XNNPACK backend.

What a user would pick instead of the runtime. ``executorch`` comes from the ``anchors``
extra (``pip install 'rt3lab[anchors]'``); when it is installed, ``rt3lab bench runtime``
times the dense model lowered with ``to_edge_transform_and_lower(...,
partitioner=[XnnpackPartitioner()])`` and run by ExecuTorch's runtime
(``executorch.runtime.Runtime``) in the same interleaved rounds as the runtime and the other
anchors, on as many threads as the bench pins. Before it is timed, its logits are checked
against PyTorch's (the same model, or the row means nothing).
"""

from __future__ import annotations

import copy
import importlib.util
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

MAX_REL_ERR = 1e-4


class AnchorError(ValueError):
    """An anchor that cannot be built here (names the anchor and why)."""


def executorch_installed() -> bool:
    """Whether the ``executorch`` package is importable here."""
    return importlib.util.find_spec("executorch") is not None


def executorch_dense(
    base: nn.Module, inputs: dict[str, Any], threads: int
) -> tuple[Callable[[], object], dict[str, Any]]:
    """The dense ``base`` lowered to ExecuTorch with XNNPACK, on ``threads`` threads: one
    call of the returned function is one inference of ``inputs``; with it, what ran
    (version, backend, threads, max relative error against PyTorch)."""
    import importlib.metadata

    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    from executorch.extension.pybindings import portable_lib
    from executorch.runtime import Runtime

    model = copy.deepcopy(base).eval()
    args, kwargs = tuple(inputs["args"]), dict(inputs["kwargs"])
    with torch.no_grad(), warnings.catch_warnings():
        # torch.export's deprecation notices about executorch's pytree use, once per node
        warnings.simplefilter("ignore", FutureWarning)
        exported = torch.export.export(model, args, kwargs)
        program = to_edge_transform_and_lower(
            exported, partitioner=[XnnpackPartitioner()]
        ).to_executorch()
        want = model(*args, **kwargs)
    portable_lib._unsafe_reset_threadpool(threads)
    # the program's buffer and the loaded program own what the method runs on: the
    # returned function keeps them alive (dropping them makes execute() crash)
    buffer = program.buffer
    loaded = Runtime.get().load_program(buffer)
    method = loaded.load_method("forward")
    keep = (buffer, loaded)
    flat = [*args, *kwargs.values()]
    got = method.execute(flat)[0]
    want = want if isinstance(want, torch.Tensor) else want[0]
    err = float((got - want).abs().max() / want.abs().max().clamp_min(1e-30))
    if not err <= MAX_REL_ERR:
        raise AnchorError(
            f"ExecuTorch XNNPACK: logits differ from PyTorch by {err:.2e} (relative), over "
            f"{MAX_REL_ERR:g}: not the same model"
        )
    info = {
        "executorch": importlib.metadata.version("executorch"),
        "backend": "XNNPACK",
        "threads": portable_lib._threadpool_get_thread_count(),
        "max_rel_err": err,
    }

    def run() -> object:
        return method.execute(flat), keep

    return run, info


def executorch_by_threads(
    base: nn.Module, inputs: dict[str, Any]
) -> Callable[[int], tuple[Callable[[], object], Callable[[int], None]]]:
    """For ``lab.runtime.thread_scaling.engine_by_threads``: the dense model on ExecuTorch
    XNNPACK (checked as :func:`executorch_dense`), and a function that resets its thread
    pool to a count (untimed, before each round's runs at that count)."""

    def make(first: int) -> tuple[Callable[[], object], Callable[[int], None]]:
        from executorch.extension.pybindings import portable_lib

        run, _ = executorch_dense(base, inputs, first)
        now = [first]

        def threads(n: int) -> None:
            if n != now[0]:
                portable_lib._unsafe_reset_threadpool(n)
                now[0] = n

        return run, threads

    return make

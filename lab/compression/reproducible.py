"""What makes two ``compress`` runs with one seed give the same bundle, and what cannot.

Held fixed, so a seed gives bit-identical weights and accuracies from a cold cache:

- **steps, not seconds**: every training stage stops after its budget's step count
  (``Budget.dense_steps``, ``bp_lasso_steps``, ``bp_retrain_steps``, ``supernet_steps``,
  ``final_steps``); no stage of ``compress`` has a time limit, so a loaded machine trains
  as many steps as a quiet one, only later;
- **seeds**: every stage draws from torch's global RNG only inside
  ``Compressor.seeded(offset)`` and from ``Compressor.generator(offset)`` (the run's seed
  plus an offset per stage), the candidates from their own generator and the search from
  the seed itself, so no stage's draws depend on what ran before it;
- **threads** (:func:`run_threads`): one count for the whole run, resolved once and
  recorded (``provenance.reproducibility.threads``). Intra-op reductions split their work
  by thread count, so 1 and 2 threads give different bits (40 dense steps of the quick
  model: other weights); the same count gives the same bits. The dense-model cache is
  keyed by it;
- **kernels** (:func:`deterministic_kernels`): torch's deterministic algorithms for the
  run (on the CPU this changes nothing measured here; on CUDA it replaces the atomic-add
  kernels, with cuBLAS' fixed workspace).

Not held fixed: **latency measured on this host** (``--estimator measured``, the default).
The deadlines (``dense-top`` scales the profile's constraints to the measured dense
latency), the level combinations the search may sample and every child's reward are
computed from the latency table, and timing noise moves the table between runs, so two
runs can choose other sets, fine-tune another backbone and report other accuracies for
every set, BP's mask on that backbone included (the BP model itself, ``reference.bp``,
does not depend on latency). The bundle records the measurement each choice was made on
(``provenance.latency_table`` with its values, ``provenance.deadlines`` with the anchor's
estimate, ``provenance.search.level_combinations`` with each level's estimate), and
``--latency-table FILE`` makes a run choose on a recorded table instead of measuring:
with the same table and seed the bundle is the same. ``op-count`` and ``profile``
estimates do not depend on the machine.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from lab.host.threads import check_threads, default_threads

if TYPE_CHECKING:
    import torch

# cuBLAS' deterministic workspace (read when the first cuBLAS handle is made)
CUBLAS_WORKSPACE = ":4096:8"


def run_threads(threads: int | None) -> tuple[int, str]:
    """The torch thread count a run uses and where it came from: ``--threads``, else
    ``OMP_NUM_THREADS``, else the usable cores (:func:`lab.host.threads.default_threads`).

    >>> run_threads(3)
    (3, '--threads')
    """
    if threads is not None:
        return check_threads(threads), "--threads"
    env = os.environ.get("OMP_NUM_THREADS", "")
    source = "OMP_NUM_THREADS" if env.isdigit() and int(env) > 0 else "usable cores"
    return default_threads(), source


@contextlib.contextmanager
def deterministic_kernels() -> Iterator[None]:
    """Torch's deterministic algorithms inside the block (``warn_only``: an op without one
    warns instead of failing), cuDNN without benchmarking, cuBLAS' fixed workspace when
    not set; torch's previous settings are restored after it."""
    import torch

    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[2:]


def state_digest(state: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 of a state dict's names, dtypes, shapes and bytes, in name order: equal
    digests, bit-identical weights.

    >>> import torch
    >>> state_digest({"w": torch.zeros(2)}) == state_digest({"w": torch.zeros(2)})
    True
    >>> state_digest({"w": torch.zeros(2)}) == state_digest({"w": -torch.zeros(2)})
    False
    """
    import torch

    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}\0".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def reproducibility_record(
    threads: int, source: str, latency: str, bp_state: Mapping[str, torch.Tensor]
) -> dict[str, Any]:
    """``provenance.reproducibility``: what was held fixed, the BP model's digest (BP does
    not depend on latency: the same seed and thread count give the same digest), and what
    the chosen sets depend on that a rerun does not repeat (``latency``: where the table
    came from, or the machine-independent estimator).

    >>> import torch
    >>> rec = reproducibility_record(2, "usable cores", "op-count", {"w": torch.ones(1)})
    >>> rec["threads"], len(rec["bp_weights_sha256"])
    (2, 64)
    """
    return {
        "threads": threads,
        "threads_from": source,
        "bp_weights_sha256": state_digest(bp_state),
        "deterministic_algorithms": True,
        "stops": "every training stage after its budget's step count (no time limits)",
        "seeds": "the run's seed plus a fixed offset per stage (Compressor.seeded/generator)",
        "latency": latency,
    }

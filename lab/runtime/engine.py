"""The native engine (``engine.c``) on the host, through ctypes: the whole forward pass of
RT3's Transformer LM, every set of a bundle in one process.

Built on first use like the block-column kernel (``lab.runtime.native``: ``$CC`` or ``cc``,
``-O3 -march=native``, cached under ``$RT3LAB_CACHE/native/`` by source, compiler, flags
and CPU). The engine loads an export (``lab.runtime.export``); :meth:`Engine.from_model`
writes one to a temporary directory first. ``RT3LAB_NATIVE=0`` or no compiler: ``library()``
is None and ``status()`` says why.

``threads`` (``Engine(export, threads=N)``, :meth:`Engine.set_threads`): the engine's own pool
of N threads (the caller's included), started once per engine and left to the scheduler (the
runner, a process of its own, pins them); each layer's block-rows and attention's heads are
split between them, and the logits are bit-identical at every count (see ``engine.c``'s
header).

Exits (``lab.runtime.exits``): a depth variant runs its first layers and one decoder; an
early-exit set stops each sequence at the first exit whose confidence reaches its
threshold. :meth:`Engine.last_exit` says which exit the last sequence took (``exits``: one
per row of the last ``__call__``); :meth:`Engine.force_exit` stops every pass at one exit,
to time it.
"""

from __future__ import annotations

import ctypes
import functools
import operator
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

if TYPE_CHECKING:
    import torch

    from lab.runtime.pattern_set import PatternSet

SOURCE = Path(__file__).with_name("engine.c")
FLAGS = ("-O3", "-march=native", "-shared", "-fPIC", "-pthread")
ABI = 3


class EngineError(ValueError):
    """The engine refused an export or an input (the message is the engine's own)."""


@functools.cache
def _load() -> tuple[ctypes.CDLL | None, str]:
    from lab.runtime import native

    if os.environ.get("RT3LAB_NATIVE", "1") == "0":
        return None, "disabled by RT3LAB_NATIVE=0"
    cc = native._compiler()
    if cc is None:
        return None, "no C compiler (set CC or install cc)"
    from lab.runtime import native_cache

    try:  # the same verified, private cache as the block-column kernel (checksum, owner)
        lib, path, note = native_cache.load(SOURCE, "engine", cc, FLAGS)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"build failed: {exc}"
    if note:
        print(f"rt3lab: native engine: {note}", file=sys.stderr)
    if lib.rt3e_abi() != ABI:
        return None, f"{path.name}: ABI mismatch"
    p, i64, c_int = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    lib.rt3e_open.restype = p
    lib.rt3e_open.argtypes = [ctypes.c_char_p, ctypes.c_char_p, c_int]
    lib.rt3e_close.argtypes = [p]
    lib.rt3e_close.restype = None
    lib.rt3e_num_sets.argtypes = [p]
    lib.rt3e_set_name.argtypes = [p, c_int]
    lib.rt3e_set_name.restype = ctypes.c_char_p
    lib.rt3e_vocab.argtypes = [p]
    lib.rt3e_vocab.restype = i64
    lib.rt3e_select.argtypes = [p, c_int]
    lib.rt3e_forward.argtypes = [p, p, i64, p, ctypes.c_char_p, c_int]
    lib.rt3e_set_threads.argtypes = [p, c_int, ctypes.c_char_p, c_int]
    lib.rt3e_threads.argtypes = [p]
    lib.rt3e_last_exit.argtypes = [p]
    lib.rt3e_last_confidence.argtypes = [p]
    lib.rt3e_last_confidence.restype = ctypes.c_double
    lib.rt3e_force_exit.argtypes = [p, c_int]
    lib.rt3e_force_exit.restype = None
    return lib, f"built with {Path(cc).name}: {path}"


def library() -> ctypes.CDLL | None:
    """The engine library, built and loaded once per process; None when unavailable."""
    return _load()[0]


def status() -> str:
    """Whether the engine is available, and if not why."""
    return _load()[1]


class Engine:
    """One loaded export: select a set by name (or ``None``: every layer dense), run tokens.

    ``threads``: the engine's pool (1: no other thread; see :meth:`set_threads`). Not
    thread-safe by itself (one workspace); ``ReconfigurableModel`` holds its lock.
    """

    def __init__(self, export_dir: str | Path, threads: int = 1):
        lib = library()
        if lib is None:
            raise EngineError(f"native engine unavailable: {status()}")
        self._lib = lib
        err = ctypes.create_string_buffer(512)
        handle = lib.rt3e_open(str(export_dir).encode(), err, len(err))
        if not handle:
            raise EngineError(f"export {export_dir}: {err.value.decode(errors='replace')}")
        self._h = handle
        import json

        header = json.loads((Path(export_dir) / "header.json").read_text())
        self.array_bytes: dict[str, int] = {a["name"]: a["nbytes"] for a in header["arrays"]}
        self.vocab = int(lib.rt3e_vocab(handle))
        n = lib.rt3e_num_sets(handle)
        self.set_names = [lib.rt3e_set_name(handle, i).decode() for i in range(n)]
        self._index = {name: i for i, name in enumerate(self.set_names)}
        self.active: str | None = None
        self.exits: list[int] = []  # the exit each row of the last __call__ took
        self._err = err
        try:
            self.set_threads(threads)
        except EngineError:
            self.close()
            raise

    @property
    def threads(self) -> int:
        """The threads a forward pass runs on (the caller's included)."""
        if self._h is None:
            raise EngineError("the engine is closed")
        return int(self._lib.rt3e_threads(self._h))

    def set_threads(self, threads: int) -> None:
        """Run on ``threads`` threads (1 to ``lab.host.threads.MAX_THREADS``): the old
        workers are joined and ``threads - 1`` new ones started (nothing happens at the
        same count). Refused (EngineError) out of range; the engine then keeps its count."""
        if self._h is None:
            raise EngineError("the engine is closed")
        try:
            n = operator.index(threads)
        except TypeError:
            raise EngineError(f"threads: expected an integer, got {threads!r}") from None
        n = max(min(n, 1 << 30), -(1 << 30))  # a C int; the engine says what is out of range
        if self._lib.rt3e_set_threads(self._h, n, self._err, len(self._err)):
            self._failed()

    @classmethod
    def from_model(
        cls,
        config: dict[str, Any],
        state: dict[str, torch.Tensor],
        sets: list[PatternSet],
        threads: int = 1,
    ) -> Engine:
        """Export ``state`` and ``sets`` to a temporary directory and load it (the engine
        keeps its own copy of the arrays; the directory is removed)."""
        from lab.runtime.export import write_export

        with tempfile.TemporaryDirectory(prefix="rt3lab-engine-") as tmp:
            return cls(write_export(Path(tmp) / "export", config, state, sets), threads)

    def select(self, name: str | None) -> float:
        """Make set ``name`` active (None: dense); seconds the selection took."""
        t0 = time.perf_counter()
        index = -1 if name is None else self._index.get(name)
        if index is None:
            raise EngineError(f"no pattern set {name!r} in the engine; have {self.set_names}")
        self._lib.rt3e_select(self._h, index)
        self.active = name
        return time.perf_counter() - t0

    def last_exit(self) -> tuple[int, float]:
        """(the exit the last sequence took: its index in the set's exits, 0 for a set
        without exits; the confidence of the last exit scored, -1 if none was)."""
        if self._h is None:
            raise EngineError("the engine is closed")
        h = self._h
        return int(self._lib.rt3e_last_exit(h)), float(self._lib.rt3e_last_confidence(h))

    def force_exit(self, index: int | None) -> None:
        """Stop every pass at exit ``index`` (scoring the earlier exits as usual: the time
        an input that exits there takes); None: the set's threshold decides again."""
        if self._h is None:
            raise EngineError("the engine is closed")
        self._lib.rt3e_force_exit(self._h, -1 if index is None else max(0, int(index)))

    def logits(self, tokens: np.ndarray) -> np.ndarray:
        """Logits ``(T, vocab)`` float32 of one int64 token sequence ``(T,)``."""
        tokens = np.ascontiguousarray(tokens, dtype=np.int64)
        if tokens.ndim != 1 or tokens.size == 0:
            raise EngineError(f"tokens: expected one non-empty sequence, got {tokens.shape}")
        out = np.empty((tokens.size, self.vocab), dtype=np.float32)
        self.forward_into(tokens, out)
        return out

    def _check(self, tokens: np.ndarray, out: np.ndarray) -> None:
        if not (
            tokens.dtype == np.int64
            and out.dtype == np.float32
            and tokens.ndim == 1
            and out.shape == (tokens.size, self.vocab)
            and tokens.flags.c_contiguous
            and out.flags.c_contiguous
        ):
            raise EngineError("forward_into: int64 (T,) tokens and float32 (T, vocab) out")

    def forward_into(self, tokens: np.ndarray, out: np.ndarray) -> None:
        """Write the logits of ``tokens`` (contiguous int64 ``(T,)``) into ``out``
        (contiguous float32 ``(T, vocab)``)."""
        self._check(tokens, out)
        self._forward(tokens.ctypes.data, tokens.size, out.ctypes.data)

    def _forward(self, t_ptr: int, n: int, o_ptr: int) -> None:
        """One sequence of ``n`` int64 tokens at ``t_ptr`` -> its logits at ``o_ptr``."""
        if self._h is None:
            raise EngineError("the engine is closed")  # not a NULL handle into C
        if self._lib.rt3e_forward(self._h, t_ptr, n, o_ptr, self._err, len(self._err)):
            self._failed()

    def _failed(self) -> NoReturn:
        raise EngineError(self._err.value.decode(errors="replace"))

    def bind(self, tokens: np.ndarray, out: np.ndarray) -> Callable[[], None]:
        """``forward_into(tokens, out)`` prepared once: a call without arguments that runs
        the active set on the same two arrays, as a serving loop with fixed buffers does.

        Checked and resolved to pointers here, not per call: each Python operation between
        two inferences runs on caches the inference has just filled with weights, and
        ``forward_into``'s checks and pointer look-ups cost ~20 us there (quick bundle,
        against a 0.15 ms set). The bound call holds both arrays (so they stay alive and
        numpy refuses to resize them); write new tokens into ``tokens`` in place."""
        self._check(tokens, out)
        fn, err = self._lib.rt3e_forward, self._err
        # arguments as ctypes objects already: no conversion per call
        handle, errlen = ctypes.c_void_p(self._h), ctypes.c_int(len(err))
        t_ptr, n = ctypes.c_void_p(tokens.ctypes.data), ctypes.c_int64(tokens.size)
        o_ptr = ctypes.c_void_p(out.ctypes.data)

        def run() -> None:  # _forward with the arguments converted once
            if self._h is None:
                raise EngineError("the engine is closed")
            if fn(handle, t_ptr, n, o_ptr, err, errlen):
                self._failed()

        run.arrays = (tokens, out)  # type: ignore[attr-defined]
        return run

    def bind_rows(self, tokens: np.ndarray) -> tuple[list[Callable[[], None]], np.ndarray]:
        """Every row of int64 ``tokens`` ``(batch, seq)`` (contiguous) bound (:meth:`bind`)
        to its rows of a new float32 logits buffer ``(batch, seq, vocab)``: (the bound calls,
        in row order, and the buffer)."""
        if tokens.ndim != 2 or tokens.size == 0:
            raise EngineError(f"tokens: expected a (batch, seq) array, got {tokens.shape}")
        out = np.empty((*tokens.shape, self.vocab), dtype=np.float32)
        return [self.bind(tokens[b], out[b]) for b in range(tokens.shape[0])], out

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, seq, vocab)`` of int64 tokens ``(batch, seq)`` (torch in, out).

        Kept to a few Python operations: they run on caches the last inference filled with
        weights (see :meth:`bind`). Still, converting the tokens and allocating fresh logits
        per call costs tens of microseconds: what is timed is the bound call
        (``ReconfigurableModel.serving_call``)."""
        import torch

        if tokens.dim() != 2:
            raise EngineError(f"tokens: expected shape (batch, seq), got {tuple(tokens.shape)}")
        toks = tokens.numpy() if tokens.dtype == torch.int64 else tokens.to(torch.int64).numpy()
        toks = np.ascontiguousarray(toks)
        out = np.empty((*toks.shape, self.vocab), dtype=np.float32)
        n, t_ptr, o_ptr = toks.shape[1], toks.ctypes.data, out.ctypes.data
        exits, last = [], self._lib.rt3e_last_exit
        for b in range(toks.shape[0]):  # row b: n int64 tokens in, n x vocab float32 out
            self._forward(t_ptr + 8 * n * b, n, o_ptr + 4 * n * self.vocab * b)
            exits.append(last(self._h))
        self.exits = exits
        return torch.from_numpy(out)

    def close(self) -> None:
        """Join the engine's threads and free its memory (also done when it is
        garbage-collected)."""
        if getattr(self, "_h", None):
            self._lib.rt3e_close(self._h)
            self._h = None

    def __del__(self) -> None:
        self.close()

"""The standalone runner: ``engine.c`` plus ``runner_main.c``, built for the host with its
compiler or cross-built with the ``ziglang`` package (static musl binaries that run under
Android's ``adb shell`` and on Linux boards alike), run on an export, and checked against
PyTorch's masked-dense model (under ``qemu-user`` for other architectures).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

    from lab.runtime.bundle import Bundle
    from lab.runtime.pattern_set import PatternSet

HERE = Path(__file__).parent
SOURCES = (HERE / "engine.c", HERE / "runner_main.c")
# target -> (zig target triple, qemu-user binary); host builds with $CC/cc
TARGETS: dict[str, tuple[str, str] | None] = {
    "host": None,
    "aarch64-linux": ("aarch64-linux-musl", "qemu-aarch64"),
    "armv7-linux": ("arm-linux-musleabihf", "qemu-arm"),
}
ZIG_HINT = (
    "cross-building needs the 'ziglang' package: .venv/bin/pip install ziglang "
    "(or pip install 'rt3lab[runner]')"
)


class RunnerError(ValueError):
    """The runner cannot be built or run as asked (names the target, tool or set)."""


def _target(target: str) -> tuple[str, str] | None:
    if target not in TARGETS:
        raise RunnerError(f"--target: {target!r} is not one of {list(TARGETS)}")
    return TARGETS[target]


def zig_problem() -> str | None:
    """Why the ``ziglang`` package cannot cross-build here (not installed, or its ``zig``
    does not run: ``python -m ziglang version`` fails), or None when it can."""
    if importlib.util.find_spec("ziglang") is None:
        return "the 'ziglang' package is not installed"
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "ziglang", "version"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`python -m ziglang version` did not run: {exc}"
    if proc.returncode != 0 or not proc.stdout.strip():
        last = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        return f"`python -m ziglang version` failed: {last}"
    return None


def zig_cc() -> list[str] | None:
    """The ``zig cc`` command of the installed ``ziglang`` package, or None when it is
    missing or does not run (`zig_problem` says which)."""
    if zig_problem() is not None:
        return None
    return [sys.executable, "-m", "ziglang", "cc"]


def build_runner(target: str, out: str | Path) -> Path:
    """Build the runner for ``target`` into ``out`` (which must not exist)."""
    from contracts.files import new_path

    triple = _target(target)
    out = new_path(out, RunnerError)  # nothing there (a dangling link neither), no file above
    out.parent.mkdir(parents=True, exist_ok=True)
    srcs = [str(s) for s in SOURCES]
    if triple is None:
        from lab.runtime import native

        cc = native._compiler()
        if cc is None:
            raise RunnerError("--target host: no C compiler (set CC or install cc)")
        cmd = [cc, "-O3", "-march=native", "-pthread", *srcs, "-o", str(out), "-lm"]
    else:
        problem = zig_problem()
        if problem is not None:
            raise RunnerError(f"--target {target}: {problem}; {ZIG_HINT}")
        zig = [sys.executable, "-m", "ziglang", "cc"]
        cmd = [*zig, "-target", triple[0], "-O3", "-static", "-s", "-pthread", *srcs]
        cmd += ["-o", str(out), "-lm"]
    env = dict(os.environ)
    env.setdefault("ZIG_GLOBAL_CACHE_DIR", str(_zig_cache()))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False, env=env)
    if proc.returncode != 0 or not out.is_file():
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RunnerError(f"--target {target}: the build failed: {last}")
    return out


def _zig_cache() -> Path:
    from contracts.cache import cache_root

    return cache_root() / "zig"


def launcher(target: str) -> list[str]:
    """How to start a runner of ``target`` here: directly on the host, else under
    qemu-user (Debian's ``qemu-user``); RunnerError if qemu is missing."""
    triple = _target(target)
    if triple is None:
        return []
    qemu = shutil.which(triple[1])
    if qemu is None:
        raise RunnerError(
            f"--target {target}: {triple[1]} is not installed (apt-get install qemu-user)"
        )
    return [qemu]


def run_runner(
    binary: str | Path,
    export: str | Path,
    set_name: str,
    runs: int = 10,
    warmup: int = 2,
    switch_to: str | None = None,
    tokens: list[int] | None = None,
    logits: str | Path | None = None,
    prefix: list[str] | None = None,
    timeout_s: float = 600,
    threads: int = 1,
) -> dict[str, Any]:
    """Run the runner once (on ``threads`` threads) and return its JSON; RunnerError with
    its one-line message."""
    cmd = [*(prefix or []), str(binary), str(export), "--set", set_name]
    cmd += ["--runs", str(runs), "--warmup", str(warmup), "--threads", str(threads)]
    if switch_to:
        cmd += ["--switch-to", switch_to]
    if tokens is not None:
        cmd += ["--ids", ",".join(str(int(t)) for t in tokens)]
    if logits is not None:
        cmd += ["--logits", str(logits)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    if proc.returncode != 0:
        msg = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        raise RunnerError(f"runner: {msg}")
    return runner_json(proc.stdout)


# C's printf writes a non-finite double as nan, -nan, inf or -inf: a value, never a string
_C_NON_FINITE = re.compile(r"(?<=[:\[,])(\s*)-?(?:nan|inf)(?=\s*[,\]}])")


def runner_json(text: str) -> dict[str, Any]:
    """The runner's one line of JSON, read strictly (``contracts.strict_json``); a
    non-finite number it printed the C way (a NaN logit's ``nan``) is read as null.

    >>> runner_json('{"set": "nan", "checksum": -nan, "first_logits": [1.5, inf]}')
    {'set': 'nan', 'checksum': None, 'first_logits': [1.5, None]}
    """
    from contracts import strict_json

    doc = strict_json.loads(_C_NON_FINITE.sub(r"\1null", text), "runner output", RunnerError)
    if not isinstance(doc, dict):
        raise RunnerError("runner output: not a JSON object")
    return doc


def masked_dense(module: nn.Module, pattern_set: PatternSet | None) -> nn.Module:
    """A copy of ``module`` with every layer of ``pattern_set`` multiplied by its mask: the
    PyTorch reference a set's engine logits must equal (run by the set's exits, when it
    names some: ``lab.model.transformer.ExitsRun``)."""
    import copy

    import torch

    ref = copy.deepcopy(module).eval()
    if pattern_set is not None:
        mods = dict(ref.named_modules())
        with torch.no_grad():
            for layer, pat in pattern_set.layers.items():
                mods[layer].weight.mul_(pat.mask().to(mods[layer].weight.dtype))
        if "exits" in pattern_set.meta:
            from lab.model.transformer import ExitsRun
            from lab.runtime.exits import ExitPlan

            return ExitsRun(ref, ExitPlan.of_meta(pattern_set.meta, ref.config.layers))
    return ref


def max_rel_err(got: np.ndarray, want: np.ndarray) -> float:
    """``max |got - want| / max |want|`` (over every position and logit).

    >>> import numpy as np
    >>> max_rel_err(np.array([1.0, 2.0]), np.array([1.0, 4.0]))
    0.5
    """
    import numpy as np

    return float(np.abs(got - want).max() / max(float(np.abs(want).max()), 1e-30))


def verify(
    bundle: Bundle, target: str, tokens: int = 35, seed: int = 0, threads: int = 1
) -> dict[str, Any]:
    """Export ``bundle``, build the runner for ``target``, run every set (and dense) on one
    token sequence on ``threads`` threads (under qemu-user off the host's architecture) and
    compare its logits with PyTorch masked-dense: ``{"target", "tokens", "threads", "sets":
    {name: max_rel_err}, "ok"}``."""
    import numpy as np
    import torch

    from lab.host.threads import check_threads
    from lab.runtime.export import export_bundle
    from lab.runtime.reconfigurable import module_from_bundle

    check_threads(threads)
    prefix = launcher(target)
    module = module_from_bundle(bundle)
    vocab = int(bundle.model["config"]["vocab_size"])
    ids = torch.randint(0, vocab, (tokens,), generator=torch.Generator().manual_seed(seed))
    errs: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="rt3lab-verify-") as tmp:
        export = export_bundle(bundle, Path(tmp) / "export")
        binary = build_runner(target, Path(tmp) / "runner")
        for name in ["dense", *bundle.sets]:
            ps = None if name == "dense" else bundle.sets[name]
            with torch.inference_mode():
                want = masked_dense(module, ps)(ids[None])[0].numpy()
            dump = Path(tmp) / "logits.f32"
            run_runner(binary, export, name, 1, 0, None, ids.tolist(), dump, prefix,
                       threads=threads)  # fmt: skip
            got = np.fromfile(dump, dtype="<f4")
            if got.size != want.size:
                raise RunnerError(f"runner: set {name!r} wrote {got.size} logits, not {want.size}")
            errs[name] = max_rel_err(got.reshape(want.shape), want)
    ok = all(e <= 1e-4 for e in errs.values())  # a NaN error is not within it
    return {"target": target, "tokens": tokens, "threads": threads, "sets": errs, "ok": ok}


def median(values: list[float]) -> float:
    """The median (for the runner's latencies).

    >>> median([3.0, 1.0, 2.0, 10.0])
    2.5
    """
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])

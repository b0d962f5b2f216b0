"""A fake ``adb`` for one fake aarch64 Android device (the hardware boundary in tests).

The device's filesystem is the directory ``$FAKE_ADB_ROOT`` (its ``/sys`` a cpufreq tree
with the kernel's layout, its ``/data`` where files are pushed). Understands ``[-s SERIAL]``
then ``root``, ``push LOCAL REMOTE`` and ``shell COMMAND``. A shell command whose program is
a file on the device is run as the device would run it: an aarch64 ELF under
``qemu-aarch64`` (anything else: "Exec format error", exit 126), after an optional
``taskset MASK``. ``cat``, ``ls``, ``test -e|-w`` and ``echo V > F`` act on the device's
files directly; other commands (``mkdir``, ``chmod``, ``stop``/``start`` of a service) run
under ``sh`` on the device's paths; ``uname -m`` says ``aarch64``. Every call goes to
``adb.log``; each runner run to ``runner.log`` (one JSON a line: its argv, the frequency
then of the policy clocking the CPUs ``taskset`` pinned it to, and what it printed).

Install it as ``adb`` on PATH with a two-line shell wrapper (see the tests).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(os.environ["FAKE_ADB_ROOT"])
EM_AARCH64 = 183
DEVICE_PATH = re.compile(r"(?<![\w/])/(sys|data)/")


def on_device(path: str) -> Path:
    """The fake device's ``path`` in the host's filesystem."""
    return ROOT / path.lstrip("/")


def rewrite(text: str) -> str:
    """Absolute device paths in ``text`` as host paths."""
    return DEVICE_PATH.sub(lambda m: f"{ROOT}/{m[1]}/", text)


def cur_khz(cpus: set[int] | None = None) -> int | None:
    """The frequency of the cpufreq policy clocking ``cpus`` (the ``taskset`` mask), else of
    the first policy (for the runner log)."""
    found = sorted((ROOT / "sys/devices/system/cpu").glob("*/cpufreq/cpuinfo_cur_freq"))
    found += sorted((ROOT / "sys/devices/system/cpu/cpufreq").glob("*/cpuinfo_cur_freq"))
    for p in found:
        affected = p.with_name("affected_cpus")
        if cpus and affected.is_file() and cpus <= {int(c) for c in affected.read_text().split()}:
            return int(p.read_text())
    return int(found[0].read_text()) if found else None


def run_binary(words: list[str], cpus: set[int] | None = None) -> int:
    """Run a program on the device (pinned to ``cpus``): an aarch64 ELF under qemu-aarch64."""
    exe = on_device(words[0])
    if not os.access(exe, os.X_OK):
        print(f"/system/bin/sh: {words[0]}: Permission denied", file=sys.stderr)
        return 126
    head = exe.read_bytes()[:20]
    if head[:4] != b"\x7fELF" or int.from_bytes(head[18:20], "little") != EM_AARCH64:
        print(f"/system/bin/sh: {words[0]}: can't execute: Exec format error", file=sys.stderr)
        return 126
    qemu = shutil.which("qemu-aarch64")
    if qemu is None:
        print("fake adb: qemu-aarch64 is missing (apt-get install qemu-user)", file=sys.stderr)
        return 127
    args = [str(on_device(w)) if DEVICE_PATH.match(w) else w for w in words[1:]]
    khz = cur_khz(cpus)
    done = subprocess.run([qemu, str(exe), *args], capture_output=True, text=True, check=False)
    sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr)
    with (ROOT / "runner.log").open("a") as fh:
        rec = {"argv": words, "khz": khz, "rc": done.returncode, "stdout": done.stdout}
        fh.write(json.dumps(rec) + "\n")
    return done.returncode


def native(words: list[str]) -> int | None:
    """``cat F``, ``ls D``, ``test -e|-w F`` and ``echo V > F`` on the device's paths, as a
    root shell does them; None for anything else."""
    if len(words) == 2 and words[0] in ("cat", "ls"):
        p = on_device(words[1])
        if words[0] == "cat" and p.is_file():
            sys.stdout.write(p.read_text())
            return 0
        if words[0] == "ls" and p.is_dir():
            print("\n".join(sorted(x.name for x in p.iterdir())))
            return 0
        print(f"{words[0]}: {words[1]}: No such file or directory", file=sys.stderr)
        return 1
    if len(words) == 3 and words[:2] in (["test", "-e"], ["test", "-w"]):
        return 0 if on_device(words[2]).exists() else 1
    if len(words) == 4 and words[0] == "echo" and words[2] == ">":
        p = on_device(words[3])
        if not p.is_file():
            print(f"/system/bin/sh: {words[3]}: No such file or directory", file=sys.stderr)
            return 1
        p.write_text(words[1] + "\n")
        return 0
    return None


def shell(command: str) -> int:
    """One ``adb shell`` line."""
    words = shlex.split(command)
    if words == ["uname", "-m"]:
        print("aarch64")
        return 0
    cpus = None
    if words[:1] == ["taskset"]:
        with (ROOT / "taskset.log").open("a") as fh:
            fh.write(words[1] + "\n")
        mask = int(words[1], 16)
        cpus = {c for c in range(64) if mask >> c & 1}
        words = words[2:]
    if words and words[0].startswith("/data/") and on_device(words[0]).is_file():
        return run_binary(words, cpus)
    fast = native(words)  # the sysfs reads and writes, without a shell (they are many)
    if fast is not None:
        return fast
    script = (
        f'stop() {{ echo "stop $1" >> {shlex.quote(str(ROOT / "services.log"))}; }}\n'
        f'start() {{ echo "start $1" >> {shlex.quote(str(ROOT / "services.log"))}; }}\n'
        + rewrite(command)
    )
    return subprocess.run(["sh", "-c", script], check=False).returncode


def main(argv: list[str]) -> int:
    """Dispatch one adb invocation."""
    with (ROOT / "adb.log").open("a") as fh:
        fh.write(" ".join(argv) + "\n")
    if argv[:1] == ["-s"]:
        argv = argv[2:]
    if argv == ["root"]:
        print("restarting adbd as root")
        return 0
    if argv[:1] == ["push"] and len(argv) == 3:
        dest = on_device(argv[2])
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(argv[1], dest)  # adb push keeps the mode bits
        print(f"{argv[1]}: 1 file pushed.")
        return 0
    if argv[:1] == ["shell"] and len(argv) == 2:
        return shell(argv[1])
    print(f"fake adb: unsupported: {' '.join(argv)}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

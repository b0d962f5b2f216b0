"""Issue 19, defect 2: a library planted in the native cache is never loaded.

Each case runs a fresh Python process that loads the kernel, as `rt3lab` does on first use."""

import os
import shutil
import stat
import subprocess
import sys
import textwrap

import pytest

from lab.runtime import native

pytestmark = pytest.mark.skipif(
    native._compiler() is None or os.environ.get("RT3LAB_NATIVE") == "0",
    reason="no C compiler: the native kernel is not built here",
)

LOAD = "from lab.runtime import native; print(native.status())"


def load_in_a_new_process(cache):
    env = {**os.environ, "RT3LAB_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", LOAD], capture_output=True, text=True,
                       env=env, timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    return r.stdout.strip(), r.stderr


def plant(lib, marker, tmp_path):
    """Replace `lib` with a library whose constructor writes `marker` when loaded."""
    src = tmp_path / "evil.c"
    src.write_text(
        textwrap.dedent(f"""
        #include <stdio.h>
        __attribute__((constructor)) static void ran(void) {{
            FILE *f = fopen("{marker}", "w"); if (f) {{ fputs("ran", f); fclose(f); }}
        }}
        int rt3lab_block_column_abi(void) {{ return {native.ABI}; }}
        void rt3lab_block_column_forward(void) {{}}
    """)
    )
    subprocess.run([native._compiler(), "-shared", "-fPIC", str(src), "-o", str(lib)], check=True)


def test_a_replaced_library_is_rebuilt_not_run_and_the_cache_is_private(tmp_path):
    cache = tmp_path / "cache"
    status, _ = load_in_a_new_process(cache)
    lib = next((cache / "native").glob("block_column-*.so"))
    assert stat.S_IMODE((cache / "native").stat().st_mode) == 0o700
    assert lib.with_name(lib.name + ".sha256").is_file() and str(lib) in status
    good = lib.read_bytes()
    marker = tmp_path / "constructor-ran"
    plant(lib, marker, tmp_path)
    status, err = load_in_a_new_process(cache)
    assert not marker.exists(), "the planted library's constructor ran"
    assert f"{lib.name}: SHA-256" in err and "is not the" in err and "rebuilt" in err
    assert "rebuilt" in status
    assert lib.read_bytes() == good  # the kernel's own build is back (same source, same cc)
    status, err = load_in_a_new_process(cache)  # and is trusted from now on
    assert err == "" and "rebuilt" not in status


@pytest.mark.slow
def test_a_library_or_cache_of_another_user_is_not_trusted(tmp_path):
    if os.getuid() != 0:
        pytest.skip("handing files to another user needs root")
    cache = tmp_path / "cache"
    load_in_a_new_process(cache)
    lib = next((cache / "native").glob("block_column-*.so"))
    marker = tmp_path / "constructor-ran"
    plant(lib, marker, tmp_path)
    digest = lib.with_name(lib.name + ".sha256")
    fd = os.open(lib, os.O_RDONLY)
    digest.write_text(native.native_cache.digest_of(fd) + "\n")  # a matching digest, too
    os.close(fd)
    os.chown(lib, 65534, 65534)
    os.chown(digest, 65534, 65534)
    status, err = load_in_a_new_process(cache)
    assert not marker.exists()
    assert "owned by uid 65534, not by you (uid 0)" in err and "rebuilt" in status
    shutil.rmtree(cache / "native")
    (cache / "native").mkdir(mode=0o777)
    os.chown(cache / "native", 65534, 65534)
    status, err = load_in_a_new_process(cache)
    assert "native is owned by uid 65534" in err and "built in" in err
    assert list((cache / "native").iterdir()) == []

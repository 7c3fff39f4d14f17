"""glibc malloc thresholds (logcaster/malloc_tuning.py), in fresh interpreters."""

from __future__ import annotations

import os
import subprocess
import sys

_PROBE = "from logcaster.malloc_tuning import tune_malloc; print(tune_malloc())"


def _probe(env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_thresholds_are_applied_on_glibc() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    assert os.confstr("CS_GNU_LIBC_VERSION")  # this machine's C library is glibc
    assert _probe(env) == "True"


def test_an_operators_malloc_settings_win() -> None:
    for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"):
        env = {**os.environ, name: "131072"}
        assert _probe(env) == "False"

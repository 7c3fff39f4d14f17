"""What the deploy/ tests share: the tools they run, found or the test fails in CI."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def require_tool(name: str, *also: Path) -> str:
    """`name` on PATH (or at one of `also`); missing fails in CI and skips elsewhere."""
    path = shutil.which(name) or next((str(p) for p in also if p.exists()), None)
    if path is None:
        why = f"{name} is missing (./scripts/test-deps installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    return path

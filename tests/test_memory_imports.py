"""What each process imports (docs/memory.md): a default server leaves scale-out's
client libraries alone, the indexer and token-index processes load only the
store's modules, and a server built without a part its configuration asks for
refuses to start, naming the option."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from logcaster.app import Server
from logcaster.config import load_config
from logcaster.exceptions import StartupError


def _imported(*modules: str) -> set[str]:
    """The top-level packages and logcaster modules a fresh interpreter holds after
    importing `modules`."""
    code = (
        "import importlib, json, sys\n"
        f"for m in {list(modules)!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, text=True)
    names: list[str] = json.loads(out.stdout)
    return {n if n.startswith("logcaster.") else n.partition(".")[0] for n in names}


def test_a_default_server_does_not_import_scaleouts_clients() -> None:
    loaded = _imported("logcaster.cli", "logcaster.app")
    assert {"redis", "psycopg", "psycopg_binary"} & loaded == set()
    assert "logcaster.scaleout.publish" not in loaded
    assert "logcaster.scaleout.history" not in loaded


@pytest.mark.parametrize(
    "module", ["logcaster.store.indexer_process", "logcaster.store.term_process"]
)
def test_the_store_processes_import_only_the_store(module: str) -> None:
    loaded = _imported(module)
    # Not the configuration (yaml, msgspec, cryptography via the TLS checks),
    # not the event loop, not the front ends.
    unwanted = {"logcaster.config", "cryptography", "yaml", "asyncio", "aiohttp", "redis"}
    assert unwanted & loaded == set()


def test_a_server_without_the_part_its_configuration_asks_for_refuses(tmp_path: Path) -> None:
    overrides = {"ingest.port": 0, "query.port": 0, "http.port": 0}
    publish = {**overrides, "persist.dir": str(tmp_path), "scaleout.publish": "redis://127.0.0.1:1"}
    with pytest.raises(StartupError, match=r"scaleout\.publish"):
        Server(load_config(None, environ={}, overrides=publish))
    history = {**overrides, "scaleout.history": "postgresql://127.0.0.1:1/x"}
    with pytest.raises(StartupError, match=r"scaleout\.history"):
        Server(load_config(None, environ={}, overrides=history))

"""A server with authentication on, its tokens made by the real `logcaster token` command."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from logcaster.testing import ServerProcess, start_server

ROLES = ("ingest", "viewer", "operator", "admin")


def token_command(*args: str, data: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "logcaster", "token", *args, "-P", str(data)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def make_token(data: Path, name: str, role: str) -> str:
    done = token_command("create", "--name", name, "--role", role, data=data)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@dataclass
class AuthServer:
    server: ServerProcess
    data: Path
    tokens: dict[str, str] = field(default_factory=dict)  # role -> token

    @property
    def audit_file(self) -> Path:
        return self.data / "audit" / "audit.log"

    def audit(self) -> list[dict[str, Any]]:
        try:
            raw = self.audit_file.read_bytes()
        except FileNotFoundError:
            return []
        return [orjson.loads(line) for line in raw.splitlines() if line.strip()]

    def wait_audit(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until the audit log holds at least `n` entries; return them all."""
        deadline = time.monotonic() + timeout
        while True:
            entries = self.audit()
            if len(entries) >= n or time.monotonic() > deadline:
                return entries
            time.sleep(0.05)

    def query(self, command: str, token: str | None, timeout: float = 10.0) -> str:
        """One command on the query port, after an AUTH line when `token` is given."""
        head = f"AUTH {token}\n" if token is not None else ""
        with socket.create_connection(("127.0.0.1", self.server.query_port), timeout) as sock:
            sock.sendall(f"{head}{command}\n".encode())
            sock.shutdown(socket.SHUT_WR)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.server.ports['http']}"


def start_auth_server(data: Path, *args: str, env: dict[str, str] | None = None) -> AuthServer:
    tokens = {role: make_token(data, f"{role}-1", role) for role in ROLES}
    full_env = {**os.environ, "LOGCASTER_AUTH__ENABLED": "true", **(env or {})}
    server = start_server("-P", str(data), *args, env=full_env)
    return AuthServer(server, data, tokens)

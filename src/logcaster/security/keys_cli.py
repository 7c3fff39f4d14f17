"""`logcaster keys create | rotate | list`: the keys file's life cycle (security/keys.py).

Nothing here prints a secret: keys are named by their ids (a hash prefix).
"""

from __future__ import annotations

import sys
from pathlib import Path

from logcaster.security import keys

EXIT_ERROR = 2


def run(command: str, path: Path) -> int:
    """Run one keys command on `path`: 0, or 2 with one line on stderr."""
    try:
        if command == "create":
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            made = keys.create(path)
            print(f"created {path}: key {made.primary_id}; back it up, it cannot be remade")
            return 0
        if command == "rotate":
            made = keys.rotate(path)
            print(
                f"{path}: new primary key {made.primary_id} ({len(made.keys)} keys); "
                "send the server SIGHUP to encrypt with it"
            )
            return 0
        held = keys.load(path)
    except (keys.KeyFileError, OSError) as exc:
        print(f"logcaster keys {command}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(f"{path}: HMAC index key created {held.hmac_created} (never rotated)")
    for info in held.keys:
        print(f"  {info.id}  {info.created}  {'primary' if info.primary else 'decrypt only'}")
    return 0

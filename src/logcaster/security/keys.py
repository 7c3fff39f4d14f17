"""The field-encryption keys file: Fernet keys (newest first) and one HMAC key.

One JSON document, mode 0600, written whole to a temporary file and renamed
over the old one (a reader never sees half a file):

    {"format": "logcaster-field-keys/1",
     "hmac": {"created": "2026-12-05T12:00:00Z", "key": "<base64url, 32 bytes>"},
     "fernet": [{"id": "3f9c0a1b2c4d", "created": "…", "key": "<Fernet key>"}, …]}

The first Fernet key encrypts; every key decrypts (`MultiFernet`), so
`rotate` adds a new first key and what the old keys encrypted stays readable.
The HMAC key makes the equality index of encrypted values (security/fields.py)
and is never rotated: a new one would give every value a new index, and
equality queries would stop finding what was stored before. Ids are the first
12 hex digits of the key's SHA-256: they name a key in `keys list` and the log
without telling anything about it.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from cryptography.fernet import Fernet, MultiFernet

FORMAT = "logcaster-field-keys/1"
HMAC_KEY_BYTES = 32
MAX_KEYS = 64  # rotations kept in one file: each key is tried on a failed decrypt
MAX_FILE_BYTES = 64 * 1024


class KeyFileError(Exception):
    """The keys file is missing, unreadable, too open or not a keys file."""


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What `keys list` shows of a key: never the key."""

    id: str
    created: str
    primary: bool


@dataclass(frozen=True, slots=True)
class FieldKeys:
    """The keys of one keys file, ready to use."""

    fernet: MultiFernet  # encrypts with the first key, decrypts with any
    hmac_key: bytes
    keys: tuple[KeyInfo, ...]
    hmac_created: str

    @property
    def primary_id(self) -> str:
        return self.keys[0].id


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:12]


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _new_fernet_entry() -> dict[str, str]:
    key = Fernet.generate_key()
    return {"id": key_id(key), "created": _now(), "key": key.decode()}


def create(path: Path) -> FieldKeys:
    """Write a new keys file (one Fernet key, one HMAC key); KeyFileError if one exists."""
    if path.exists():
        raise KeyFileError(f"{path} exists already (use `logcaster keys rotate` to add a key)")
    hmac_key = base64.urlsafe_b64encode(secrets.token_bytes(HMAC_KEY_BYTES)).decode()
    doc = {
        "format": FORMAT,
        "hmac": {"created": _now(), "key": hmac_key},
        "fernet": [_new_fernet_entry()],
    }
    _write(path, doc, exclusive=True)
    return _parse(path, doc)


def rotate(path: Path) -> FieldKeys:
    """Add a new primary Fernet key; the others stay, to decrypt what they encrypted."""
    doc = _read_existing(path)
    _parse(path, doc)  # refuse to rewrite a file that is not a valid keys file
    keys = doc["fernet"]
    if len(keys) >= MAX_KEYS:
        raise KeyFileError(
            f"{path} holds {MAX_KEYS} keys already: remove keys no retained data needs"
        )
    doc["fernet"] = [_new_fernet_entry(), *keys]
    _write(path, doc, exclusive=False)
    return _parse(path, doc)


def load(path: Path) -> FieldKeys:
    """The keys of `path`; KeyFileError saying what is wrong with it."""
    return _parse(path, _read_existing(path))


def load_or_create(path: Path) -> tuple[FieldKeys, bool]:
    """The keys of `path`, created first when there is no file; True if created."""
    try:
        return _parse(path, _read(path)), False
    except FileNotFoundError:
        pass
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        return create(path), True
    except OSError as exc:
        raise KeyFileError(f"cannot create {path}: {exc.strerror or exc}") from None


def _read_existing(path: Path) -> dict[str, Any]:
    try:
        return _read(path)
    except FileNotFoundError:
        raise KeyFileError(f"{path} does not exist (`logcaster keys create` makes it)") from None


def _read(path: Path) -> dict[str, Any]:
    """The keys file's document; FileNotFoundError when there is none."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise KeyFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise KeyFileError(f"{path} is not a regular file")
        if mode & 0o077:
            # Like ssh with a private key: a secret others can read is not one.
            raise KeyFileError(
                f"{path} is readable by others (mode {stat.S_IMODE(mode):04o}); chmod 600 it"
            )
        data = os.read(fd, MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise KeyFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise KeyFileError(f"{path} is larger than {MAX_FILE_BYTES} bytes: not a keys file")
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise KeyFileError(f"{path} is not JSON: not a keys file") from None
    if not isinstance(doc, dict):
        raise KeyFileError(f"{path} is not a keys file")
    return doc


def _parse(path: Path, doc: dict[str, Any]) -> FieldKeys:
    if doc.get("format") != FORMAT:
        raise KeyFileError(f"{path} is not a keys file (no format {FORMAT!r})")
    try:
        hmac_doc = doc["hmac"]
        hmac_key = base64.urlsafe_b64decode(hmac_doc["key"])
        entries = doc["fernet"]
        fernets = [Fernet(e["key"]) for e in entries]
        infos = tuple(
            KeyInfo(key_id(e["key"].encode()), str(e.get("created", "?")), i == 0)
            for i, e in enumerate(entries)
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise KeyFileError(f"{path} holds a malformed key ({type(exc).__name__})") from None
    if len(hmac_key) < 16:
        raise KeyFileError(f"{path}: the HMAC key is shorter than 16 bytes")
    if not fernets:
        raise KeyFileError(f"{path} holds no Fernet key")
    return FieldKeys(MultiFernet(fernets), hmac_key, infos, str(hmac_doc.get("created", "?")))


def _write(path: Path, doc: dict[str, Any], *, exclusive: bool) -> None:
    """Write `doc` to a 0600 temporary file beside `path`, fsync it, rename it over."""
    data = orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if exclusive:
            os.link(tmp, path)  # fails if another `create` won the race
            tmp.unlink()
        else:
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)

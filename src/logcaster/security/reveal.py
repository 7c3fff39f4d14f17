"""Queries over encrypted fields (docs/encryption.md): equality through the
keyed index, and clear values only for a caller allowed to decrypt.

`FieldQueries.seal_query` turns `email=a@b.c` on an encrypted field into the
prefix every sealing of `a@b.c` shares (`enc:v1:<index>:`); the memory
buffer, the store and its text prefilter then answer it like any field
equality. `decrypt=1` is checked by `check_decrypt` before the query runs,
and `reveal` opens the markers of the returned rows only: counts and the
matching itself never need the clear values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from logcaster.event import Event
from logcaster.exceptions import DecryptRefused
from logcaster.parsing.parse import parse_event
from logcaster.query.model import SEALED_PREFIX, Query
from logcaster.query.planner import Answer
from logcaster.security.fields import FieldCipher, reveal_text
from logcaster.security.keys import FieldKeys
from logcaster.security.roles import ANONYMOUS, Permission, Principal


def may_decrypt(principal: Principal = ANONYMOUS) -> bool:
    """Whether `principal` may see encrypted fields in clear: the one check, fed
    the request's principal by each front end (ANONYMOUS while auth is off)."""
    return principal.may(Permission.DECRYPT)


class FieldQueries:
    """The query side of field encryption, with the keys the server holds."""

    def __init__(self, names: Sequence[str], keys: FieldKeys) -> None:
        self.names = frozenset(names)
        self.cipher = FieldCipher(keys)

    def use_keys(self, keys: FieldKeys) -> None:
        self.cipher = FieldCipher(keys)

    def seal_query(self, query: Query) -> Query:
        """`query` with equality on encrypted fields asked by index."""
        if not self.names or not any(name in self.names for name, _ in query.fields):
            return query
        index = self.cipher.index
        fields = tuple(
            (name, index(value).decode())
            if name in self.names and not value.startswith(SEALED_PREFIX)
            else (name, value)
            for name, value in query.fields
        )
        return replace(query, fields=fields)

    def reveal(self, answer: Answer) -> Answer:
        """The answer with its rows' markers opened (new events: memory's are shared)."""
        return replace(answer, rows=[self.reveal_event(ev) for ev in answer.rows])

    def reveal_event(self, ev: Event) -> Event:
        text = ev.body.encode()
        clear = reveal_text(self.cipher, text)
        if clear is text:
            return ev
        return parse_event(ev.id, ev.received_at, ev.source, clear)


def check_decrypt(principal: Principal, fields: FieldQueries | None) -> None:
    """Raise DecryptRefused unless `principal` may decrypt and the server holds keys."""
    if not may_decrypt(principal):
        raise DecryptRefused("decrypt=1 needs the DECRYPT permission (admin)", forbidden=True)
    if fields is None:
        raise DecryptRefused(
            "decrypt=1: this server holds no field keys (encrypt.fields, encrypt.keys_file)",
            forbidden=False,
        )

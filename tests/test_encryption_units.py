"""Field encryption's parts with real keys files (security/keys.py, fields.py,
reveal.py): what each text shape becomes, that the parser reads the marker as
the field's value and the query's index finds it, that revealing gives the
text back, and who may decrypt."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from logcaster.exceptions import DecryptRefused
from logcaster.parsing.parse import parse_event
from logcaster.query.model import Query
from logcaster.security import keys as field_keys
from logcaster.security.fields import MARKER, FieldEncryptor
from logcaster.security.reveal import FieldQueries, check_decrypt, may_decrypt
from logcaster.security.roles import ANONYMOUS, ROLES, Principal

NAMES = ["user_id", "email"]

# (sent, the field values the parser must read back after sealing)
SHAPES: list[tuple[bytes, dict[str, str]]] = [
    (b'{"msg":"login","user_id":"alice","email":"a@b.c","n":1}', {"user_id": "alice"}),
    (b'{"user_id": 42, "email": null}', {"user_id": "42"}),
    (b'{"msg":"login user_id=bob done"}', {"user_id": "bob"}),  # pairs in the message
    (b'{"msg":"say user_id=\\"bo b\\""}', {"user_id": "bo b"}),  # quoted, inside JSON
    (b'{"msg":"say user_id=\'bo b\' ok"}', {"user_id": "bo b"}),
    (b'{"user_id":"x\\"y","email":"\\u00e9@b"}', {"user_id": 'x"y', "email": "é@b"}),
    (b'{"n": {"user_id": "nested"}, "user_id": 1e5}', {"user_id": "100000.0"}),
    (b'{"flag": true, "user_id": true}', {"user_id": "True"}),
    (b'{"user_id": ["a", "b"]}', {"user_id": "['a', 'b']"}),
    (b'{"msg":"the \\"user_id\\": \\"x\\"", "user_id" : "alice"}', {"user_id": "alice"}),
    (b'{not json user_id=alice "email": "a@b"', {"user_id": "alice"}),
    (b'INFO login user_id=alice email="a b@c" other=1', {"user_id": "alice", "email": "a b@c"}),
    (b"level=warn user_id='al ice'", {"user_id": "al ice"}),
    (b'msg="x" user_id="q\\"uote"', {"user_id": 'q"uote'}),
    (b"a=1,user_id=carol;b=2", {"user_id": "carol"}),
    (b'<13>1 2026-01-19T08:00:00Z h app - - [x@1 user_id="alice"] hi', {"user_id": "alice"}),
    (b"Traceback user_id=alice\n  at line 2 email=z@z", {"user_id": "alice", "email": "z@z"}),
    (b"caf\xc3\xa9 user_id=\xc3\xa9l\xc3\xa8ve", {"user_id": "élève"}),
]


@pytest.fixture
def keys(tmp_path: Path) -> field_keys.FieldKeys:
    return field_keys.create(tmp_path / "keys.json")


@pytest.mark.parametrize(("text", "expect"), SHAPES, ids=lambda v: str(v)[:30])
def test_each_shape_is_sealed_found_and_revealed(
    keys: field_keys.FieldKeys, text: bytes, expect: dict[str, str]
) -> None:
    encryptor = FieldEncryptor(NAMES, keys)
    queries = FieldQueries(NAMES, keys)
    [sealed] = encryptor.rewrite([text])
    for name, value in expect.items():
        # Outside the markers (random base64 may hold a short value by chance).
        assert value.encode() not in MARKER.sub(b"", sealed)
        ev = parse_event(1, 0.0, "t", sealed)
        assert MARKER.fullmatch(ev.fields[name].encode()), ev.fields
        query = queries.seal_query(Query(fields=((name, value),)))
        assert query.matcher()(ev)
        other = queries.seal_query(Query(fields=((name, value + "x"),)))
        assert not other.matcher()(ev)
    if text.startswith(b"{") and _is_json(text):
        orjson.loads(sealed)  # still JSON
    clear = queries.reveal_event(parse_event(1, 0.0, "t", sealed))
    original = parse_event(1, 0.0, "t", text)
    assert clear.fields == original.fields
    if not text.startswith(b"{"):  # a JSON line is re-serialized: spaces may go
        assert clear.body == original.body  # byte for byte
        assert clear.message == original.message


def _is_json(text: bytes) -> bool:
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return True


def test_texts_without_a_configured_name_are_passed_over(keys: field_keys.FieldKeys) -> None:
    encryptor = FieldEncryptor(NAMES, keys)
    texts = [b"plain", b'{"user":"alice"}', b"xuser_id=1"]
    out = encryptor.rewrite(texts)
    assert out is texts or out == texts
    assert encryptor.sealed == 0


def test_a_sealed_text_is_not_sealed_again(keys: field_keys.FieldKeys) -> None:
    encryptor = FieldEncryptor(NAMES, keys)
    once = encryptor.rewrite([b'user_id=alice {"x":1}', b'{"email":"a@b.c"}'])
    assert encryptor.rewrite(list(once)) == once


def test_equal_values_share_their_index_not_their_key(tmp_path: Path) -> None:
    first = field_keys.create(tmp_path / "a.json")
    second = field_keys.create(tmp_path / "b.json")
    a = FieldEncryptor(NAMES, first).rewrite([b"user_id=alice", b"user_id=alice"])
    b = FieldEncryptor(NAMES, second).rewrite([b"user_id=alice"])
    index = a[0].rsplit(b":", 1)[0]
    assert a[1].startswith(index)  # linkable: equal values, equal index
    assert not b[0].startswith(index)  # another HMAC key, another index


def test_rotation_keeps_every_key_for_decrypting(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    before = field_keys.create(path)
    sealed = FieldEncryptor(NAMES, before).rewrite([b"user_id=alice"])[0]
    after = field_keys.rotate(path)
    assert [k.id for k in after.keys][1:] == [k.id for k in before.keys]
    assert after.hmac_key == before.hmac_key  # the index stays
    queries = FieldQueries(NAMES, after)
    assert queries.reveal_event(parse_event(1, 0.0, "t", sealed)).body == "user_id=alice"
    newer = FieldEncryptor(NAMES, after).rewrite([b"user_id=alice"])[0]
    assert newer.rsplit(b":", 1)[0] == sealed.rsplit(b":", 1)[0]  # same index
    assert newer != sealed


def test_a_marker_of_unknown_keys_stays_as_it_is(tmp_path: Path) -> None:
    sealed = FieldEncryptor(NAMES, field_keys.create(tmp_path / "a.json")).rewrite(
        [b'{"user_id":"alice"}']
    )[0]
    stranger = FieldQueries(NAMES, field_keys.create(tmp_path / "b.json"))
    ev = parse_event(1, 0.0, "t", sealed)
    assert stranger.reveal_event(ev).fields == ev.fields


@pytest.mark.parametrize("role", ROLES)
def test_only_admins_may_decrypt(keys: field_keys.FieldKeys, role: str) -> None:
    principal = Principal("t", role)  # type: ignore[arg-type]
    queries = FieldQueries(NAMES, keys)
    if role == "admin":
        assert may_decrypt(principal)
        check_decrypt(principal, queries)
        with pytest.raises(DecryptRefused) as refused:
            check_decrypt(principal, None)
        assert not refused.value.forbidden
    else:
        assert not may_decrypt(principal)
        with pytest.raises(DecryptRefused) as refused:
            check_decrypt(principal, queries)
        assert refused.value.forbidden
    assert may_decrypt(ANONYMOUS)  # authentication off: as before SPEC §9


def test_a_keys_file_that_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    field_keys.create(path)
    path.chmod(0o640)
    with pytest.raises(field_keys.KeyFileError, match="chmod 600"):
        field_keys.load(path)

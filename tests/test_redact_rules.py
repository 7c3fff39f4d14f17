"""Redaction's matcher (security/redact_rules.py, security/redact.py) on many
samples: what each built-in rewrites and what it leaves, the Luhn check, JSON
lines kept valid, operators' rules, their config errors, and the one property
the speed rests on: the Hyperscan prefilter never misses a text a rule would
change (the batch result equals every rule run on every text)."""

from __future__ import annotations

import functools
import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logcaster.config import load_config
from logcaster.exceptions import ConfigError
from logcaster.options import RedactConfig
from logcaster.security.redact import Redactor
from logcaster.security.redact_rules import BUILTINS, REWRITES, Marks, luhn

ALL = list(BUILTINS)


def redactor(builtins: list[str] | None = None, **options: object) -> Redactor:
    overrides: dict[str, object] = {"redact.enabled": True}
    overrides["redact.builtins"] = ALL if builtins is None else builtins
    overrides.update({f"redact.{k}": v for k, v in options.items()})
    return Redactor(load_config(None, environ={}, overrides=overrides).redact)


@functools.cache
def _cached(builtins: tuple[str, ...]) -> Redactor:
    return redactor(list(builtins))


def one(text: str, builtins: list[str] | None = None) -> str:
    [out] = _cached(tuple(ALL if builtins is None else builtins)).rewrite([text.encode()])
    return out.decode()


def reference(r: Redactor, text: bytes) -> bytes:
    """Every rule of `r`, in order, on the text: what the prefilter may skip only
    when it changes nothing."""
    for name in r.builtins:
        text = REWRITES[name](text, r.marks, lambda _: None)
    for rule in r.rules:
        text = rule.rewrite(text, r.marks, lambda _: None)
    return text


def with_check_digit(body: str) -> str:
    for d in "0123456789":
        if luhn((body + d).encode()):
            return body + d
    raise AssertionError


# Published test numbers of the card networks (all pass Luhn).
CARDS = [
    "4111111111111111",  # Visa
    "4012888888881881",
    "4222222222222",  # Visa, 13 digits
    "5555555555554444",  # Mastercard
    "5105105105105100",
    "2223003122003222",  # Mastercard 2-series
    "378282246310005",  # Amex, 15 digits
    "371449635398431",
    "6011111111111117",  # Discover
    "6011000990139424",
    "3530111333300000",  # JCB
    "30569309025904",  # Diners, 14 digits
    "6250941006528599",  # UnionPay
    "4000056655665556",
    with_check_digit("601100000000000000"),  # 19 digits
]


def grouped(card: str, sep: str) -> str:
    return sep.join(card[i : i + 4] for i in range(0, len(card), 4))


@pytest.mark.parametrize("card", CARDS)
def test_card_numbers_are_redacted_plain_grouped_and_in_json(card: str) -> None:
    assert one(f"paid with {card} ok") == "paid with [REDACTED:card] ok"
    assert one(f"{card}") == "[REDACTED:card]"
    assert one(f"[INFO] card {card}") == "[INFO] card [REDACTED:card]"  # `[` is no JSON
    assert one(f"card={grouped(card, ' ')}.") == "card=[REDACTED:card]."
    assert one(f"card {grouped(card, '-')}, thanks") == "card [REDACTED:card], thanks"
    doc = json.loads(one(json.dumps({"card": card, "n": int(card), "m": f"x {card} y"})))
    assert doc == {"card": "[REDACTED:card]", "n": "[REDACTED:card]", "m": "x [REDACTED:card] y"}


@pytest.mark.parametrize("card", CARDS)
def test_a_number_failing_luhn_stays(card: str) -> None:
    bad = card[:-1] + str((int(card[-1]) + 1) % 10)
    for text in (f"id {bad} ok", grouped(bad, " "), json.dumps({"n": int(bad)})):
        assert one(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "took 1737273600123 ms",  # epoch milliseconds: starts with 1
        "trace 4111111111111111111111 end",  # 22 digits: no card
        "order 12345678901 ok",  # too short
        "uuid 550e8400-e29b-41d4-a716-446655440000",
        '{"score": 0.4668009636693299}',  # a fraction's digits
        "ratio 4111111111111111.5 and 1.4111111111111111",
        # UUIDs whose digit runs pass Luhn (seen in the simulator's correlation ids)
        "correlation_id=9d41fd56-6374-1293-4080-100f86d033d2",
        "correlation_id=7e370812-4119-277a-9e7b-0123456789ab",
        "id 12345678-1234-1234-1234-123456789012 all digits",
        "build visa-4111111111111111 tag",  # part of a hyphenated token
        "call +1 415 555 2671 now",
        "ip 192.168.100.200 port 8080",
        "2026-01-19 08:00:00.123 [INFO] done in 45 ms",
        "sha 3f786850e387550fdab836ed7e6dc881de23001b",
        "9111111111111111 starts with 9",  # passes Luhn, outside the networks' ranges
        "tokens_used=500 max_tokens=4096 token_count=3",
        "the token was refused",
        "password reset mail sent",
        "Bearer credentials were refused",
        "PWD=/home/app user=bob",
        "AKIAshort and ASIA",
        "user@localhost has no domain",
    ],
)
def test_innocent_text_is_untouched(text: str) -> None:
    assert one(text) == text


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("login user=bob password=hunter2 ok", "login user=bob password=[REDACTED:password] ok"),
        ("PASSWORD=Hunter2!", "PASSWORD=[REDACTED:password]"),
        ("db_password: s3cr3t", "db_password: [REDACTED:password]"),
        ("passwd=x,user=y", "passwd=[REDACTED:password],user=y"),
        ('password="two words" next=1', 'password="[REDACTED:password]" next=1'),
        ("secret='a b c'", "secret='[REDACTED:password]'"),
        ("client_secret=abc123", "client_secret=[REDACTED:password]"),
        (
            "GET /cb?code=1&access_token=abc.def&x=2",
            "GET /cb?code=1&access_token=[REDACTED:password]&x=2",
        ),
        ("X-Auth-Token: f00ba4", "X-Auth-Token: [REDACTED:password]"),
        ("api_key=k-123 apikey=k-456", "api_key=[REDACTED:password] apikey=[REDACTED:password]"),
        ('msg="user login" token=eyJhbGci.x.y', 'msg="user login" token=[REDACTED:password]'),
        ("password=", "password="),
    ],
)
def test_passwords_in_key_value(text: str, want: str) -> None:
    assert one(text) == want


def test_passwords_in_json_keep_it_json_with_its_other_fields() -> None:
    doc = {
        "level": "info",
        "user": "bob",
        "password": 'pa"ss\\word',
        "Token": 12345,
        "nested": {"apiKey": "k1", "note": "password=inner"},
        "passwords_count": 3,
        "empty_secret": "",
        "token_null": None,
    }
    out = json.loads(one(json.dumps(doc)))
    assert out == {
        "level": "info",
        "user": "bob",
        "password": "[REDACTED:password]",
        "Token": "[REDACTED:password]",
        "nested": {"apiKey": "[REDACTED:password]", "note": "password=[REDACTED:password]"},
        "passwords_count": 3,
        "empty_secret": "",
        "token_null": None,
    }


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("Authorization: Bearer abc", "Authorization: Bearer [REDACTED:bearer]"),
        ("authorization=Basic dXNlcjpwYXNz", "authorization=Basic [REDACTED:bearer]"),
        ("Proxy-Authorization: Digest x=1", "Proxy-Authorization: Digest [REDACTED:bearer]"),
        ("sent Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig", "sent Bearer [REDACTED:bearer]"),
        ("curl -H 'Bearer AbCdEfGhIj'", "curl -H 'Bearer [REDACTED:bearer]'"),
        # The scheme stays, and the password rule leaves a value holding a marker.
        (
            '{"authorization": "Bearer tok-123456"}',
            '{"authorization": "Bearer [REDACTED:bearer]"}',
        ),
    ],
)
def test_bearer_tokens(text: str, want: str) -> None:
    assert one(text) == want


def test_bearer_alone_keeps_a_json_header_json() -> None:
    text = '{"authorization": "Bearer tok-123456", "n": 1}'
    assert json.loads(one(text, ["bearer"])) == {
        "authorization": "Bearer [REDACTED:bearer]",
        "n": 1,
    }


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("key AKIAIOSFODNN7EXAMPLE used", "key [REDACTED:aws_key] used"),
        ("ASIAY34FZKBOKMUTVV7A", "[REDACTED:aws_key]"),
        (
            "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "aws_secret_access_key=[REDACTED:aws_key]",
        ),
        (
            '{"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG"}',
            '{"SecretAccessKey": "[REDACTED:aws_key]"}',
        ),
        ("XAKIAIOSFODNN7EXAMPLE", "XAKIAIOSFODNN7EXAMPLE"),  # inside a longer word
    ],
)
def test_aws_keys(text: str, want: str) -> None:
    assert one(text) == want


def test_emails_only_when_asked() -> None:
    text = "mail to bob.smith+tag@mail.example.co.uk sent"
    assert one(text) == "mail to [REDACTED:email] sent"
    assert one(text, ["card", "password", "bearer", "aws_key"]) == text
    assert RedactConfig().builtins == ["card", "password", "bearer", "aws_key"]


def test_counts_by_rule_and_a_batch_without_secrets_is_the_same_list() -> None:
    r = redactor()
    clean = [b"a", b"b c", b"id 1234"]
    assert r.rewrite(clean) is clean
    out = r.rewrite([b"x password=1 card 4111111111111111", b"ok", b"AKIAIOSFODNN7EXAMPLE"])
    assert out[1] == b"ok"
    assert r.counts == {"bearer": 0, "aws_key": 1, "password": 1, "card": 1, "email": 0}


def test_operator_rules_after_the_built_ins() -> None:
    rules = [
        {"name": "ssn", "pattern": r"\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b"},
        {"name": "user", "pattern": r"user=(\w)\w*", "replacement": r"user=\1***"},
        {"name": "start", "pattern": r"\Ainternal:", "replacement": "x:"},
        {"name": "marker", "pattern": r"\[REDACTED:password\]", "replacement": "<gone>"},
    ]
    r = redactor(rules=rules)
    out = r.rewrite(
        [b"ssn 123-45-6789 user=bobby", b"internal: ok", b"not internal: ok", b"password=1"]
    )
    assert out == [
        b"ssn [REDACTED:ssn] user=b***",
        b"x: ok",
        b"not internal: ok",
        b"password=<gone>",
    ]
    assert r.counts["ssn"] == 1 and r.counts["user"] == 1 and r.counts["start"] == 1
    assert r.counts["marker"] == 1 and r.counts["password"] == 1


def test_a_marker_of_ones_own() -> None:
    r = redactor(marker="***")
    assert r.rewrite([b"password=x 4111111111111111"]) == [b"password=*** ***"]
    r = redactor(marker="<{rule}>")
    assert r.rewrite([b'{"token": 1}']) == [b'{"token": "<password>"}']


@pytest.mark.parametrize(
    ("options", "key", "reason"),
    [
        ({"rules": [{"name": "a", "pattern": "("}]}, "redact.rules.0.pattern", "not a valid RE2"),
        (
            {"rules": [{"name": "a", "pattern": "x"}, {"name": "b", "pattern": "a*"}]},
            "redact.rules.1.pattern",
            "matches the empty string",
        ),
        ({"rules": [{"name": "a", "pattern": "x" * 1025}]}, "redact.rules.0.pattern", "1024"),
        (
            {"rules": [{"name": "a", "pattern": "(x)", "replacement": r"\2"}]},
            "redact.rules.0.replacement",
            "names no group",
        ),
        (
            {"rules": [{"name": "a", "pattern": "x", "replacement": 'a"b'}]},
            "redact.rules.0.replacement",
            "quotes",
        ),
        (
            {"rules": [{"name": "a", "pattern": "x", "replacement": r"a\b"}]},
            "redact.rules.0.replacement",
            "backslash",
        ),
        ({"rules": [{"name": "card", "pattern": "x"}]}, "redact.rules.0.name", "taken"),
        (
            {"rules": [{"name": "a-b", "pattern": "x"}, {"name": "a_b", "pattern": "y"}]},
            "redact.rules.1.name",
            "taken",
        ),
        ({"rules": [{"name": "a b", "pattern": "x"}]}, "redact.rules.0.name", ""),
        ({"rules": [{"name": f"r{i}", "pattern": "x"} for i in range(33)]}, "redact.rules", "32"),
        ({"builtins": ["card", "ssn"]}, "redact.builtins.1", "email"),
        ({"marker": 'say "no"'}, "redact.marker", "quotes"),
        ({"marker": "{name}"}, "redact.marker", "placeholder"),
        ({"marker": ""}, "redact.marker", ""),
    ],
)
def test_config_errors_name_the_key(options: dict[str, object], key: str, reason: str) -> None:
    overrides = {f"redact.{k}": v for k, v in options.items()}
    with pytest.raises(ConfigError) as info:
        load_config(None, environ={}, overrides=overrides)
    assert info.value.key == key
    assert reason in str(info.value)


# ------------------------------------------------------------------- properties

_WITH_RULE = redactor(rules=[{"name": "ssn", "pattern": r"\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b"}])
_FRAGMENTS = [
    "password",
    "Password",
    "passwd",
    "token",
    "secret",
    "authorization",
    "Authorization",
    "api_key",
    "aws_secret_access_key",
    "Bearer",
    "bearer",
    "Basic",
    "AKIAIOSFODNN7EXAMPLE",
    "ASIA",
    "=",
    ":",
    ": ",
    '"',
    "'",
    "{",
    "}",
    ",",
    " ",
    "  ",
    "-",
    "&",
    ";",
    "\\",
    "\n",
    "4111",
    "1111",
    "4111111111111111",
    "5555 5555 5555 4444",
    "378282246310005",
    "0",
    "12",
    "bob@example.com",
    "@",
    ".com",
    "x",
    "hunter2",
    "[REDACTED:password]",
    "eyJhbGci.x.y",
    "123-45-6789",
    "user=bobby",
    "é",
    "\t",
]
texts = st.lists(st.sampled_from(_FRAGMENTS), max_size=14).map(
    lambda parts: "".join(parts).encode()
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(texts, min_size=1, max_size=30))
def test_the_prefilter_never_misses(batch: list[bytes]) -> None:
    r = _WITH_RULE
    assert r.rewrite(batch) == [reference(r, t) for t in batch]


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=13, max_value=19).flatmap(
        lambda n: st.tuples(
            st.sampled_from("23456"), st.text("0123456789", min_size=n - 2, max_size=n - 2)
        )
    ),
    st.sampled_from(["", " ", "-"]),
)
def test_every_luhn_valid_number_in_range_is_redacted(parts: tuple[str, str], sep: str) -> None:
    card = with_check_digit(parts[0] + parts[1])
    text = f"n={grouped(card, sep)} done"
    assert one(text, ["card"]) == "n=[REDACTED:card] done"
    # Grouped, a wrong number may hold a right one of whole groups: that one goes.
    wrong = card[:-1] + str((int(card[-1]) + 3) % 10)
    assert one(f"n={wrong} done", ["card"]) == f"n={wrong} done"


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20) | st.sampled_from(CARDS),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
_keys = st.sampled_from(["password", "token", "user", "msg", "Authorization", "n", "card", "email"])


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        _keys | st.text(max_size=8), _json_values | st.sampled_from(_FRAGMENTS), max_size=6
    )
)
def test_json_lines_stay_json(doc: dict[str, object]) -> None:
    text = json.dumps(doc)
    out = one(text)
    parsed = json.loads(out)
    assert set(parsed) == set(doc)
    for key in ("user", "n"):
        if key in doc and isinstance(doc[key], bool | type(None)):
            assert parsed[key] == doc[key]


def test_a_batch_of_long_digit_runs_stops_the_scan_and_stays_right() -> None:
    rnd = random.Random(7)
    batch = [("".join(rnd.choice("23456789") for _ in range(400))).encode() for _ in range(50)]
    batch[-1] += b" card 4111111111111111"
    r = redactor()
    out = r.rewrite(batch)
    assert out == [reference(r, t) for t in batch]
    assert out[-1].endswith(b" card [REDACTED:card]")


def test_marks_recognise_their_own() -> None:
    marks = Marks("[REDACTED:{rule}]")
    assert marks.holds(b"[REDACTED:aws_key]") and not marks.holds(b"[REDACTED:]")


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("{'password': 'hunter2'}", "{'password': '[REDACTED:password]'}"),  # a Python dict
        ('{"msg": "conn password=\\"hunter2\\""}', '{"msg": "conn password=[REDACTED:password]"}'),
        ("run --password hunter2 --verbose", "run --password [REDACTED:password] --verbose"),
        (
            "dsn postgres://app:S3cretPw@db:5432/x",
            "dsn postgres://app:[REDACTED:password]@db:5432/x",
        ),
    ],
)
def test_more_password_forms(text: str, want: str) -> None:
    assert one(text) == want

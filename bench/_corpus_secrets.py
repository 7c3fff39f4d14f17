"""`--corpus secrets`: the seed-style corpus with a secret in 10% of its lines.

Every 9th variant of each single-line pool (single lines are 90% of the lines,
so about 10% of all lines) carries one secret the redaction built-ins take: a
Luhn-valid card number (plain, or grouped by spaces or dashes), `password=...`
(or `"password":"..."` in a JSON line, which stays JSON), a token, an
`Authorization: Bearer ...` header or an AWS access key id. The multi-line
blocks are the default corpus' (bench/_corpus_blocks.py). Draws come from the
generator's seeded `random.Random`, after the pools and before the blocks.
"""

from __future__ import annotations

import random

from _corpus_blocks import Blocks, Pods, seed_blocks

SECRET_EVERY = 9  # every 9th pool variant: ~10% of all lines
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def _card(rnd: random.Random) -> str:
    body = rnd.choice("45") + "".join(rnd.choice("0123456789") for _ in range(14))
    card = next(body + d for d in "0123456789" if _luhn_ok(body + d))
    sep = rnd.choice(("", "", " ", "-"))
    return sep.join(card[i : i + 4] for i in range(0, 16, 4))


def _word(rnd: random.Random, n: int) -> str:
    return "".join(rnd.choice(_ALNUM) for _ in range(n))


def _secret(rnd: random.Random) -> tuple[str, str]:
    """(a key=value or text form, the JSON field form) of one secret."""
    kind = rnd.randrange(5)
    if kind == 0:
        card = _card(rnd)
        return f"card={card}", f'"card":"{card}"'
    if kind == 1:
        pw = _word(rnd, 12)
        return f"password={pw}", f'"password":"{pw}"'
    if kind == 2:
        tok = _word(rnd, 32)
        return f"access_token={tok}", f'"token":"{tok}"'
    if kind == 3:
        jwt = f"eyJ{_word(rnd, 20)}.{_word(rnd, 24)}.{_word(rnd, 16)}"
        return f"Authorization: Bearer {jwt}", f'"authorization":"Bearer {jwt}"'
    key = "AKIA" + "".join(rnd.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16))
    return f"aws_key={key}", f'"aws_key":"{key}"'


def secret_blocks(rnd: random.Random, pods: Pods, pools: dict[str, list[str]]) -> Blocks:
    """The default corpus' blocks; puts the secrets into `pools` first."""
    for kind, pool in pools.items():
        for i in range(0, len(pool), SECRET_EVERY):
            text, field = _secret(rnd)
            if kind == "json":  # `{..., "duration_ms":N}` -> `{..., "duration_ms":N,<field>}`
                pool[i] = pool[i][:-1] + "," + field + "}"
            else:
                pool[i] = pool[i] + " " + text
    return seed_blocks(rnd, pods, pools)

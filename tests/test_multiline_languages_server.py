"""Stack traces of every language through a real server (SPEC §3, issue 16): several
connections at once, in random chunks, traces interleaved with single lines, back to
back, and after error records; each text sent must come out as exactly one event."""

from __future__ import annotations

import random
from collections import Counter

from logcaster.testing import ServerProcess
from tests.test_multiline_server import query_json, send_streams
from tests.test_pipeline_multiline import TRACES

SENDERS = 5
TRACES_PER_SENDER = 40
SINGLES = (
    "2026-03-01 12:00:{n:02d} INFO request {tag} served in 12 ms",
    '{{"level": "warn", "service": "cart", "msg": "slow basket {tag}"}}',
    "[INFO] 2026-03-01 12:00:01.234 orders/v2.1.0: order {tag} shipped",
    "plain line {tag} with no level",
)


def sender_texts(sender: int) -> list[str]:
    """One connection's events: traces alone, after single lines, back to back."""
    rng = random.Random(sender)
    names = sorted(TRACES)
    texts: list[str] = []
    for i in range(TRACES_PER_SENDER):
        for j in range(rng.choice((0, 0, 1, 2))):  # sometimes none: back to back
            tag = f"{sender}-{i}-{j}"
            texts.append(rng.choice(SINGLES).format(n=j, tag=tag))
        texts.append("\n".join(TRACES[names[(sender + i) % len(names)]]))
    texts.append(f"plain line {sender}-end")
    return texts


def test_traces_of_every_language_over_concurrent_connections(server: ServerProcess) -> None:
    streams = [sender_texts(sender) for sender in range(SENDERS)]
    expected_total = sum(map(len, streams))
    send_streams(server, streams, seed=200)
    assert server.stats()["Total"] == expected_total
    everything = query_json(server, f"QUERY limit={expected_total} max_count={expected_total}")
    assert everything["found"] == expected_total
    sent = Counter(text for stream in streams for text in stream)
    assert Counter(ev["body"] for ev in everything["events"]) == sent

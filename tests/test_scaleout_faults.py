"""Scale-out's fault test (issue 22, docs/scaleout-design.md, "Tests"): real
processes on loopback, scripted faults, and at the end every line in PostgreSQL
exactly once.

3 ingest nodes (`serve -P DIR --publish`), 3 writers, a private redis-server
(AOF, `appendfsync always`) and a schema of its own in the machine's
PostgreSQL. Poison entries go in first, alone in the stream, and must reach the
dead-letter stream. Then 1,000,000 numbered lines go out through 6
`LogCasterClient`s (acks, a session each: the client's default), two per node,
at a steady pace (about a minute), while:

- a writer is killed with SIGKILL (the one holding most pending entries), three
  times, a replacement started each time: the others claim its entries;
- an ingest node is killed with SIGKILL while its clients send; they are pointed
  at the other nodes and resend what it had not acknowledged (their sessions
  make the resends exactly-once); the node starts again on its directory (it
  drains its spool) and one of the two clients moves back to it;
- the writers' PostgreSQL connections are ended with `pg_terminate_backend`,
  twice;
- Redis is stopped (SIGSTOP) for 10 s, then continued: the nodes spool, and
  what they had sent before their timeout is taken too when Redis wakes;
- more poison goes in among the nodes' entries;
- Redis is killed with SIGKILL and started again on the same port and AOF.

Then COUNT = COUNT(DISTINCT line) = 1,000,000 (and one `seen` row per line),
every pending list is empty and the dead-letter stream holds the poison and
nothing else. Faults are placed by the share of lines sent, not by the clock.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from tests.scaleout_helpers import (
    DEAD,
    GROUP,
    STREAM,
    Cluster,
    Sender,
    kill9,
    pg_schema,
    schema_url,
    terminate_writers,
    wait_until,
)

TOTAL = 1_000_000
NODES = 3
WRITERS = 3
SENDERS = 6  # two per node
SEND_SECONDS = 60.0  # the senders' pace: TOTAL lines over about this long
BUDGET = 330.0  # seconds the whole scenario may take before it fails
REDIS_STOPPED = 10.0
# Poison: entries no writer can decode. The first ones go in before any node
# publishes, with ids of our own, 1-8 to 1-11, alone in the stream: a writer's
# delivery counts must take 1-10 as after 1-9 (stream ids are numbers, not bytes)
# or they never reach the dead-letter stream. More go in mid-stream, among the
# nodes' entries.
FIRST_POISON: dict[bytes, dict[bytes, bytes]] = {
    b"1-8": {b"v": b"9"},
    b"1-9": {
        b"v": b"1",
        b"node": b"1",
        b"first": b"1",
        b"n": b"2",
        b"recv": b"1",
        b"src": b"x",
        b"texts": b"only one line\n",
    },
    b"1-10": {b"v": b"1", b"node": b"0", b"first": b"1", b"n": b"1", b"recv": b"1"},
    b"1-11": {b"v": b"1", b"node": b"1", b"first": b"x", b"n": b"1", b"recv": b"1"},
}
LATER_POISON: list[dict[bytes, bytes]] = [
    {b"v": b"9", b"texts": b"from a newer node\n"},
    {b"v": b"1", b"node": b"2", b"first": b"5", b"n": b"3", b"recv": b"1", b"texts": b"a\nb\n"},
    {b"v": b"1", b"node": b"2", b"first": b"5", b"n": b"1", b"recv": b"1", b"texts": b"x\n",
     b"session": b"zz", b"seq": b"0"},
]  # fmt: skip
COUNT_SQL = """SELECT count(*), count(DISTINCT n), min(n), max(n)
    FROM (SELECT substring(body FROM ' line ([0-9]+) ')::int AS n FROM events) lines"""


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """Redis, nodes and writers of one test (killed after, by pid) and its schema."""
    with pg_schema() as schema:
        c = Cluster(tmp_path, schema)
        try:
            yield c
        finally:
            c.close()


class Scenario:
    """The senders, the fault script and what it observed."""

    def __init__(self, cluster: Cluster) -> None:
        self.c = cluster
        self.t0 = time.monotonic()
        self.deadline = self.t0 + BUDGET
        self.senders: list[Sender] = []
        self.steps: list[str] = []
        self.terminated = 0
        self.poison: dict[bytes, dict[bytes, bytes]] = dict(FIRST_POISON)

    def note(self, what: str) -> None:
        self.steps.append(f"{time.monotonic() - self.t0:6.1f}s {what}")

    def report(self) -> str:
        c = self.c
        nodes = "\n".join(
            f"== node {i}: {b''.join(n.raw_stderr[-15:]).decode(errors='replace')}"
            for i, n in enumerate(c.nodes)
        )
        return "\n".join(self.steps) + "\n" + c.writer_logs() + "\n" + nodes

    def left(self) -> float:
        return max(1.0, self.deadline - time.monotonic())

    # -- the senders -------------------------------------------------------------

    def start_senders(self) -> None:
        per = TOTAL // SENDERS
        rate = per / SEND_SECONDS
        for i in range(SENDERS):
            node = self.c.nodes[i % NODES]
            lines = range(i * per, TOTAL if i == SENDERS - 1 else (i + 1) * per)
            s = Sender(i, ("127.0.0.1", node.ingest_port), lines, rate=rate, deadline=self.deadline)
            self.senders.append(s)
            self.c.senders.append(s)
        for s in self.senders:
            s.start()
        self.note(f"{SENDERS} senders started, {TOTAL} lines over ~{SEND_SECONDS:.0f} s")

    def sent(self) -> float:
        """The share of the lines handed to the clients; raises a sender's failure."""
        for s in self.senders:
            if s.error is not None:
                raise AssertionError(f"{s.name} failed: {s.error!r}\n{self.report()}")
        return sum(s.sent for s in self.senders) / TOTAL

    def when_sent(self, share: float) -> None:
        wait_until(f"{share:.0%} of the lines sent", lambda: self.sent() >= share, self.left())

    # -- the faults --------------------------------------------------------------

    def kill_a_writer(self) -> None:
        """SIGKILL the live writer holding most pending entries; start a replacement."""
        c = self.c
        live = {w.name: w for w in c.writers if w.proc.poll() is None}
        held: dict[str, int] = {}

        def someone_holds() -> bool:
            """Entries published by the nodes (not poison) held by a live writer."""
            with c.redis.client() as r:
                info = r.xpending_range(STREAM, GROUP, "-", "+", 10_000)
            held.clear()
            for entry in info:
                name = entry["consumer"].decode()
                if name in live and entry["message_id"] not in self.poison:
                    held[name] = held.get(name, 0) + 1
            return bool(held)

        try:
            wait_until("a writer holding pending entries", someone_holds, 10)
            victim = live[max(held, key=lambda n: held[n])]
        except TimeoutError:
            victim = next(iter(live.values()))
        victim.kill9()
        replacement = c.writer()
        replacement.wait_started()
        self.note(f"writer {victim.name} killed ({held}); {replacement.name} started")

    def kill_a_node(self) -> None:
        """SIGKILL node 2 while its clients send; point them at the others; start
        node 2 again on its directory (it drains what it had spooled)."""
        c = self.c
        victim = c.nodes[NODES - 1]
        kill9(victim)
        moved = []
        for s in self.senders:
            if s.client.address[1] == victim.ingest_port:
                other = c.nodes[s.index % (NODES - 1)]
                s.failover = ("127.0.0.1", other.ingest_port)
                moved.append(s.name)
        self.note(f"node {NODES - 1} killed; {moved} pointed at the others")
        again = c.node(NODES - 1)
        self.note(f"node {NODES - 1} started again (ingest port {again.ingest_port})")

    def back_to_the_restarted_node(self) -> None:
        """Sender 5, moved off node 2 when it died, goes back (a new client, once
        every line of the old one is acknowledged): the restarted node's event ids
        must continue after its SIGKILL, or new lines would share (node, event id,
        day) keys with old ones and be dropped as duplicates."""
        s = self.senders[-1]
        port = self.c.nodes[-1].ingest_port
        s.move = ("127.0.0.1", port)
        self.note(f"{s.name} moves to the restarted node {NODES - 1} ({port})")

    def inject_poison(self) -> None:
        with self.c.redis.client() as r:
            for fields in LATER_POISON:
                self.poison[r.xadd(STREAM, fields)] = fields
        self.note(f"{len(LATER_POISON)} poison entries among the nodes' entries")

    def stop_redis(self) -> None:
        self.c.redis.signal(signal.SIGSTOP)
        self.note(f"redis stopped (SIGSTOP) for {REDIS_STOPPED:.0f} s")
        time.sleep(REDIS_STOPPED)
        self.c.redis.signal(signal.SIGCONT)
        self.note("redis continued (SIGCONT)")

    def kill_redis(self) -> None:
        self.c.redis.kill9()
        self.note("redis killed (SIGKILL)")
        time.sleep(2.0)
        self.c.redis.start()
        self.note("redis started again on its port and AOF")

    def end_pg_connections(self) -> None:
        n = terminate_writers(self.c.schema)
        self.terminated += n
        self.note(f"pg_terminate_backend: {n} writer backends")

    def run_script(self) -> None:
        script: list[tuple[float, Callable[[], None]]] = [
            (0.06, self.kill_a_writer),
            (0.14, self.kill_a_node),
            (0.22, self.end_pg_connections),
            (0.26, self.back_to_the_restarted_node),
            (0.30, self.stop_redis),
            (0.44, self.inject_poison),
            (0.48, self.kill_a_writer),
            (0.58, self.kill_redis),
            (0.70, self.end_pg_connections),
            (0.80, self.kill_a_writer),
        ]
        for share, fault in script:
            self.when_sent(share)
            fault()

    # -- the end -----------------------------------------------------------------

    def wait_for_senders(self) -> None:
        for s in self.senders:
            s.join(self.left())
            assert not s.is_alive(), f"{s.name} still sending\n{self.report()}"
        self.sent()  # raises a sender's failure
        self.note("every line acknowledged by a node")


def stored(url: str) -> tuple[int, int, int, int]:
    with psycopg.connect(url, connect_timeout=5) as conn:
        row = conn.execute(COUNT_SQL).fetchone()
    assert row is not None
    count, distinct, low, high = row
    return int(count), int(distinct), int(low or 0), int(high or 0)


@pytest.mark.timeout(BUDGET + 90)
def test_every_line_once_through_writer_node_redis_and_postgres_faults(
    cluster: Cluster,
) -> None:
    c = cluster
    run = Scenario(c)
    c.redis.start()
    with c.redis.client() as r:
        for eid, fields in FIRST_POISON.items():
            r.xadd(STREAM, fields, id=eid)
    for _ in range(WRITERS):
        c.writer()
    for w in c.writers:
        w.wait_started()

    def first_poison_dead() -> bool:
        with c.redis.client() as r:
            return {f[b"entry"] for _, f in r.xrange(DEAD)} == set(FIRST_POISON)

    try:
        wait_until("the first poison in the dead-letter stream", first_poison_dead, 30)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{run.report()}") from None
    run.note(f"{len(FIRST_POISON)} poison entries, alone in the stream, dead-lettered")
    for i in range(NODES):
        c.node(i)
    run.start_senders()
    run.run_script()
    run.wait_for_senders()

    url = schema_url(c.schema)
    last: list[tuple[int, int, int, int]] = []

    def all_stored() -> bool:
        last[:] = [stored(url)]
        return last[0][0] >= TOTAL

    try:
        wait_until("every line in PostgreSQL", all_stored, run.left(), step=0.5)
    except TimeoutError as exc:
        raise AssertionError(f"{exc}: {last}\n{run.report()}") from None
    run.note(f"{TOTAL} rows in PostgreSQL")

    def settled() -> bool:
        with c.redis.client() as r:
            idle = int(r.xpending(STREAM, GROUP)["pending"]) == 0
            return idle and r.xlen(DEAD) >= len(run.poison)

    with contextlib.suppress(TimeoutError):  # the assertions below say what is left
        wait_until("empty pending lists and the dead letters", settled, 60, step=0.2)
    run.note("settled")

    with c.redis.client() as r:
        pending = r.xpending(STREAM, GROUP)
        consumers = r.xinfo_consumers(STREAM, GROUP)
        letters = r.xrange(DEAD)
    report = run.report()
    assert stored(url) == (TOTAL, TOTAL, 0, TOTAL - 1), report
    with psycopg.connect(url) as conn:  # one (session, line) each: the lines' numbering
        assert conn.execute("SELECT count(*) FROM seen").fetchone() == (TOTAL,), report
    assert pending["pending"] == 0, f"{pending}\n{report}"
    assert all(int(x["pending"]) == 0 for x in consumers), f"{consumers}\n{report}"
    dead = {fields[b"entry"]: fields for _, fields in letters}
    assert set(dead) == set(run.poison), f"{letters}\n{report}"
    for eid, fields in run.poison.items():
        assert {k: v for k, v in dead[eid].items() if k in fields} == fields, report
        assert int(dead[eid][b"deliveries"]) > 3 and dead[eid][b"error"], report
    # The faults happened: backends ended, the moved clients connected again, the
    # restarted node took lines.
    assert run.terminated > 0, report
    moved = [s for s in run.senders if s.index % NODES == NODES - 1]
    assert all(s.connects >= 2 for s in moved), report
    assert c.nodes[-1].stats()["Total"] > 0, report
    print(report.split("\n==", 1)[0])

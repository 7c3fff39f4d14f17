"""The event stream: deterministic, fast, independent of how it is paced.

All randomness comes from one `random.Random(seed)`. Events are made in fixed
chunks of `CHUNK` whatever batch sizes the runner asks for, so the same seed
and options give the same events whether they go out one every two seconds or
a million as fast as possible. Times come from a simulated clock (`epoch_ms`
plus the pacing step per event), never from the wall clock.

Speed: message texts, key=value tails and stack-trace templates are rendered
once into pools; an event costs a few pool picks and at most one `%` format.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from logcaster.simulate.catalog import (
    INFO_MESSAGES,
    SCENARIOS,
    SERVICES,
    WARN_MESSAGES,
    MessageFactory,
    Service,
)
from logcaster.simulate.flows import STEPS, Flow, step_message
from logcaster.simulate.traces import TraceTemplate, build

CHUNK = 1024
DEFAULT_ERROR_RATE = 0.3
# The seed's mix at the default error rate: INFO 55% / WARN 15% / ERROR 30%.
_INFO_SHARE, _WARN_SHARE = 0.55, 0.15
FLOW_SHARE = 0.15  # share of event slots that advance a payment flow
_MAX_FLOWS = 4  # flows in progress at once (their steps interleave)
_POOL = 64  # pre-rendered messages per service and level
_TRACE_VARIANTS = 4  # trace templates per (service, scenario)
# With --seed, simulated time starts here (seed 002's example time), so output is
# byte-identical from run to run.
SEED_EPOCH_MS = 1768836600000  # 2026-01-19T15:30:00Z

INFO, WARN, ERROR = "INFO", "WARN", "ERROR"


class SimEvent:
    """One generated event. `trace` is set for ERROR events (a stack trace)."""

    __slots__ = (
        "correlation_id",
        "level",
        "lines",
        "message",
        "pairs",
        "pairs_text",
        "pod",
        "request_id",
        "service",
        "trace",
        "trace_text",
        "ts_ms",
        "user_id",
    )

    def __init__(
        self,
        ts_ms: int,
        level: str,
        service: Service,
        pod: str,
        message: str,
        pairs: tuple[tuple[str, str], ...],
        pairs_text: str,
        request_id: str,
        user_id: str,
        correlation_id: str,
        trace: TraceTemplate | None = None,
        trace_text: str = "",
    ) -> None:
        self.ts_ms = ts_ms
        self.level = level
        self.service = service
        self.pod = pod
        self.message = message
        self.pairs = pairs  # extra key=value fields (INFO/WARN)
        self.pairs_text = pairs_text  # the same as " k=v k=v"
        self.request_id = request_id
        self.user_id = user_id
        self.correlation_id = correlation_id
        self.trace = trace
        self.trace_text = trace_text  # the trace's lines after the message line
        self.lines = trace.lines if trace is not None else 1


@dataclass(frozen=True)
class _Pooled:
    message: str
    pairs: tuple[tuple[str, str], ...]
    pairs_text: str


def level_weights(error_rate: float) -> tuple[float, float, float]:
    """INFO, WARN, ERROR shares: ERROR is `error_rate`, INFO and WARN keep their 55:15 ratio."""
    rest = 1.0 - error_rate
    info = rest * _INFO_SHARE / (_INFO_SHARE + _WARN_SHARE)
    return info, rest - info, error_rate


def _pairs_text(pairs: tuple[tuple[str, str], ...]) -> str:
    return "".join(f" {key}={value}" for key, value in pairs)


class Generator:
    def __init__(
        self,
        seed: int,
        error_rate: float = DEFAULT_ERROR_RATE,
        step_ms: float | None = None,
        epoch_ms: int = SEED_EPOCH_MS,
    ) -> None:
        """`step_ms`: simulated time between events (None: a random 0-3 ms, for unpaced runs)."""
        self._rnd = rnd = random.Random(seed)
        info, warn, _ = level_weights(error_rate)
        self._cum = (info, info + warn, 1.0)
        self._step_ms = step_ms
        self._epoch_ms = epoch_ms
        self._clock_ms = epoch_ms
        self._index = 0
        self._request = 100000 + rnd.randrange(800000)
        self._flow_id = 0
        self._flows: list[Flow] = []
        self._buffer: list[SimEvent] = []
        self._pos = 0
        self._info = [self._pool(rnd, INFO_MESSAGES[s.name]) for s in SERVICES]
        self._warn = [self._pool(rnd, WARN_MESSAGES) for _ in SERVICES]
        self._traces = [
            [[build(rnd, svc, sc) for _ in range(_TRACE_VARIANTS)] for sc in SCENARIOS]
            for svc in SERVICES
        ]
        self._step_traces = [
            [build(rnd, step.service, step.scenario) for _ in range(_TRACE_VARIANTS)]
            for step in STEPS
        ]

    @staticmethod
    def _pool(rnd: random.Random, factories: tuple[MessageFactory, ...]) -> list[_Pooled]:
        pool = []
        for _ in range(_POOL):
            factory = rnd.choice(factories)
            message, pairs = factory(rnd)
            pool.append(_Pooled(message, pairs, _pairs_text(pairs)))
        return pool

    def take(self, n: int) -> list[SimEvent]:
        """The next `n` events of the stream."""
        out: list[SimEvent] = []
        while len(out) < n:
            if self._pos >= len(self._buffer):
                self._buffer = self._chunk()
                self._pos = 0
            end = min(len(self._buffer), self._pos + n - len(out))
            out.extend(self._buffer[self._pos : end])
            self._pos = end
        return out

    def _chunk(self) -> list[SimEvent]:
        rnd = self._rnd
        random_ = rnd.random
        getrandbits = rnd.getrandbits
        levels = rnd.choices((INFO, WARN, ERROR), cum_weights=self._cum, k=CHUNK)
        n_services = len(SERVICES)
        n_scenarios = len(SCENARIOS)
        out: list[SimEvent] = []
        append = out.append
        for level in levels:
            ts = self._tick(getrandbits)
            if random_() < FLOW_SHARE:
                append(self._flow_event(ts, level))
                continue
            s = int(random_() * n_services)
            service = SERVICES[s]
            pod = service.pods[int(random_() * len(service.pods))]
            self._request += 1
            rid = f"req-{self._request}"
            uid = f"user-{1000 + int(random_() * 9000)}"
            cid = _uuid(getrandbits(128))
            if level == ERROR:
                tmpl = self._traces[s][int(random_() * n_scenarios)][getrandbits(2)]
                append(_trace_event(ts, service, pod, tmpl, rid, uid, cid, random_))
            else:
                pool = self._info[s] if level == INFO else self._warn[s]
                p = pool[getrandbits(6)]
                append(
                    SimEvent(
                        ts, level, service, pod, p.message, p.pairs, p.pairs_text, rid, uid, cid
                    )
                )
        return out

    def _tick(self, getrandbits: Callable[[int], int]) -> int:
        if self._step_ms is None:
            self._clock_ms += getrandbits(2)
            return self._clock_ms
        # Event i is due i steps after the start, as the runner paces it.
        ts = self._epoch_ms + int(self._index * self._step_ms)
        self._index += 1
        return ts

    def _flow_event(self, ts: int, level: str) -> SimEvent:
        rnd = self._rnd
        flows = self._flows
        if not flows or (len(flows) < _MAX_FLOWS and rnd.random() < 0.4):
            self._request += 1
            self._flow_id += 1
            amount = f"{rnd.randint(5, 900)}.{rnd.randint(0, 99):02d}"
            flow = Flow(
                self._flow_id,
                f"req-{self._request}",
                f"user-{rnd.randint(1000, 9999)}",
                _uuid(rnd.getrandbits(128)),
                amount,
            )
            flows.append(flow)
        else:
            flow = flows[rnd.randrange(len(flows))]
        step = STEPS[flow.step]
        service = step.service
        pod = rnd.choice(service.pods)
        flow.step += 1
        if level == ERROR or flow.step == len(STEPS):
            flows.remove(flow)  # a failed step ends the flow, as does the last one
        if level == ERROR:
            tmpl = rnd.choice(self._step_traces[flow.step - 1])
            ids = (flow.request_id, flow.user_id, flow.correlation_id)
            return _trace_event(ts, service, pod, tmpl, *ids, rnd.random)
        message, pairs = step_message(rnd, flow, step, slow=level == WARN)
        return SimEvent(
            ts,
            level,
            service,
            pod,
            message,
            pairs,
            _pairs_text(pairs),
            flow.request_id,
            flow.user_id,
            flow.correlation_id,
        )


def _uuid(bits: int) -> str:
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _trace_event(
    ts: int,
    service: Service,
    pod: str,
    tmpl: TraceTemplate,
    rid: str,
    uid: str,
    cid: str,
    random_: Callable[[], float],
) -> SimEvent:
    if tmpl.java:
        thread = 1 + int(random_() * 200)
        text = tmpl.text % (thread, 1000 + int(random_() * 9000), rid, uid, cid)
    else:
        text = tmpl.text % (rid, uid, cid)
    # The template starts with the message line; the rest is the trace.
    message, _, trace_text = text.partition("\n")
    return SimEvent(ts, ERROR, service, pod, message, (), "", rid, uid, cid, tmpl, trace_text)

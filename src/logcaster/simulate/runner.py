"""Run the simulator: pace the generator into an output, show progress, summarize.

Pacing works in batches against the monotonic clock: at each wake-up the
runner sends every event due by now (`elapsed * rate`, minus those sent), then
sleeps until the next one is due, but at least `_MIN_TICK` at high rates. One
sleep per batch, never one per event, so tens of thousands of events a second
hold their rate, and a late wake-up is caught up on the next batch.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, TextIO

from tqdm import tqdm

from logcaster.simulate.generator import ERROR, SEED_EPOCH_MS, WARN, Generator
from logcaster.simulate.outputs import Output, OutputClosed, open_output

EXIT_UNDELIVERED = 1  # the run ended, but some events were not delivered (unsent > 0)
EXIT_INTERRUPTED = 130  # Ctrl-C (SIGINT)
EXIT_TERMINATED = 143  # SIGTERM
_UNPACED_BATCH = 4096
_MAX_BATCH = 8192  # a batch behind schedule is caught up in pieces of this size
_MIN_TICK = 0.005  # at high rates, sleep at least this long: ~100 events per batch at 20k/s
_MAX_SLEEP = 0.25  # wake at least this often to check --duration
_PROGRESS_DELAY = 2.0  # a run shows progress only once it has lasted this long


class _Terminated(Exception):
    """SIGTERM: end like Ctrl-C, with a summary."""


class _Stop:
    """SIGINT and SIGTERM, noted by the handler and acted on by the loop.

    Raising from the handler could land anywhere, inside tqdm's refresh too,
    which takes its lock without a `finally`: the summary's `bar.close()`
    then waited on that lock forever. So the first signal only sets `signum`,
    and the loop raises at its next step (at most `_MAX_SLEEP` or one send
    later); a second SIGINT interrupts at once, as without a handler.
    """

    signum: int | None = None

    @classmethod
    def handle(cls, signum: int, frame: object) -> None:
        if cls.signum == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt
        cls.signum = signum

    @classmethod
    def check(cls) -> None:
        if cls.signum == signal.SIGINT:
            raise KeyboardInterrupt
        if cls.signum is not None:
            raise _Terminated


@dataclass(frozen=True)
class Options:
    interval: float = 2.0
    error_rate: float = 0.3
    rate: float | None = None
    count: int | None = None
    duration: float | None = None
    seed: int | None = None
    format: str = "text"
    output: str = "-"
    progress: bool = False
    ca_file: str | None = None  # tls://, syslog+tls://, https://: the server's CA
    cert_file: str | None = None  # a client certificate (mTLS)
    key_file: str | None = None

    def problems(self) -> list[str]:
        out = []
        if not 0.0 <= self.error_rate <= 1.0:
            out.append("--error-rate must be between 0 and 1")
        if self.interval < 0 or not math.isfinite(self.interval):
            out.append("--interval must be >= 0")
        if self.rate is not None and not (0 < self.rate < math.inf):
            out.append("--rate must be > 0")
        if self.count is not None and self.count < 1:
            out.append("--count must be >= 1")
        if self.duration is not None and not (0 < self.duration < math.inf):
            out.append("--duration must be > 0")
        if self.format not in ("text", "json"):
            out.append("--format must be text or json")
        return out

    @property
    def step(self) -> float | None:
        """Seconds between events; None: as fast as possible."""
        if self.rate is not None:
            return 1.0 / self.rate
        return self.interval or None


@dataclass
class Totals:
    events: int = 0
    lines: int = 0
    errors: int = 0
    warns: int = 0
    unsent: int = 0
    reconnects: int = 0
    seconds: float = 0.0

    def summary(self, seed: int, interrupted: bool) -> str:
        rate = self.events / self.seconds if self.seconds > 0 else 0.0
        infos = self.events - self.errors - self.warns
        return (
            f"simulate: {'interrupted' if interrupted else 'done'} events={self.events} "
            f"lines={self.lines} infos={infos} warns={self.warns} errors={self.errors} "
            f"sent={self.events - self.unsent} unsent={self.unsent} "
            f"reconnects={self.reconnects} seconds={self.seconds:.3f} rate={rate:.0f}/s "
            f"seed={seed}"
        )


def _show_progress(opts: Options, stderr: TextIO) -> bool:
    if opts.output in ("-", "stdout"):
        if not stderr.isatty():
            return False  # stdout is the data; stderr is not a person watching
        if sys.stdout.isatty() and not opts.progress:
            return False  # the events scroll on the same screen: a bar would garble them
    return opts.progress or stderr.isatty()


def run(opts: Options, stderr: TextIO | None = None) -> int:
    """Run until --count or --duration (or forever); the exit status: 0 every event
    delivered, 1 some unsent, 130 after Ctrl-C, 143 after SIGTERM."""
    err = stderr if stderr is not None else sys.stderr
    seed = opts.seed if opts.seed is not None else int.from_bytes(os.urandom(4), "big")
    step = opts.step
    # With --seed the simulated clock starts at a fixed time: the same output every run.
    epoch_ms = SEED_EPOCH_MS if opts.seed is not None else int(time.time() * 1000)
    gen = Generator(seed, opts.error_rate, None if step is None else step * 1000, epoch_ms)
    bar = tqdm(
        total=opts.count,
        unit="ev",
        file=err,
        disable=not _show_progress(opts, err),
        delay=0 if opts.progress else _PROGRESS_DELAY,
        mininterval=0.5,
        dynamic_ncols=True,
    )

    def notify(message: str) -> None:
        tqdm.write(message, file=err)

    output = open_output(
        opts.output, opts.format, notify, opts.ca_file, opts.cert_file, opts.key_file
    )
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        _Stop.signum = None
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, _Stop.handle)
    totals = Totals()
    code = 0
    start = time.monotonic()
    try:
        _loop(opts, gen, output, totals, bar, start)
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    except _Terminated:
        code = EXIT_TERMINATED
    except OutputClosed:
        pass
    finally:
        totals.seconds = time.monotonic() - start
        try:
            output.close()
        except KeyboardInterrupt:
            code = EXIT_INTERRUPTED
        totals.unsent = output.unsent
        totals.reconnects = output.reconnects
        bar.close()
        for number, handler in previous.items():
            signal.signal(number, handler)
    if opts.output in ("-", "stdout"):
        # A reader that went away (`| head`): keep the interpreter's final flush quiet.
        _quiet_stdout()
    print(totals.summary(seed, code != 0), file=err, flush=True)
    if code == 0 and totals.unsent:
        code = EXIT_UNDELIVERED  # a failed delivery must not look like success to a script
    return code


def _loop(
    opts: Options, gen: Generator, output: Output, totals: Totals, bar: tqdm[Any], start: float
) -> None:
    step = opts.step
    count = opts.count
    duration = opts.duration
    # Events due over the whole --duration when paced (the last one at t < duration).
    limit = count
    if duration is not None and step is not None:
        due_in_duration = math.ceil(duration / step)
        limit = due_in_duration if limit is None else min(limit, due_in_duration)
    json_lines = opts.format == "json"  # one line per event, traces included
    done = 0
    while limit is None or done < limit:
        _Stop.check()
        now = time.monotonic()
        elapsed = now - start
        if duration is not None and elapsed >= duration:
            break
        if step is None:
            n = _UNPACED_BATCH
        else:
            n = min(int(elapsed / step) + 1 - done, _MAX_BATCH)  # the first event is due at 0
            if n <= 0:
                wait = start + done * step - now
                if duration is not None:
                    wait = min(wait, start + duration - now)
                time.sleep(min(max(wait, min(_MIN_TICK, step)), _MAX_SLEEP))
                continue
        if limit is not None:
            n = min(n, limit - done)
        events = gen.take(n)
        output.write(events)
        done += n
        totals.events = done
        lines = errors = warns = 0
        for ev in events:
            level = ev.level
            if level == ERROR:
                errors += 1
                lines += ev.lines
            else:
                lines += 1
                if level == WARN:
                    warns += 1
        totals.lines += n if json_lines else lines
        totals.errors += errors
        totals.warns += warns
        bar.update(n)
        if output.unsent:
            bar.set_postfix(unsent=output.unsent, refresh=False)


def _quiet_stdout() -> None:
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())

"""The file-tail source (`sources.files`): follows files and feeds their lines to
the pipeline, as TCP ingest does with a connection (docs/file-source.md).

One task owns every `Tailer`: it scans the globs every `poll_interval`, checks
each open file for rotation and truncation, reads whatever grew in chunks of
`read_bytes` (in a thread: a read may block on a slow disk), and waits for room
whenever the queue is full (backpressure: the file simply stays unread).
Positions: see tailer.py, positions.py and recovery.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from logcaster.config import Config
from logcaster.log import log_event
from logcaster.metrics.registry import Readings
from logcaster.parsing.multiline import Grouper
from logcaster.pipeline.framing import LineFramer
from logcaster.pipeline.pipeline import Offered, Pipeline
from logcaster.sources.files import metrics as m
from logcaster.sources.files import positions
from logcaster.sources.files.discovery import Candidate, Found, scan
from logcaster.sources.files.identity import FileId, identify
from logcaster.sources.files.positions import Entry
from logcaster.sources.files.recovery import stored_offsets
from logcaster.sources.files.tailer import Tailer
from logcaster.stats import Stats

logger = logging.getLogger("logcaster.sources.files")

LISTENER = "file"
IDLE_READ_S = 0.25  # at the end of every file: look again this often (at most poll_interval)
SAVE_EVERY_S = 1.0  # the positions file, when a position moved
# Chunks read from one file before the next gets its turn (and the scans theirs).
ROUND_CHUNKS = 16
MAX_UNREADABLE = 10_000  # paths remembered as warned about; past it, warned again


class FileSource:
    option = "sources.files"
    endpoint = None

    def __init__(self, config: Config, pipeline: Pipeline, stats: Stats) -> None:
        self._cfg = config.sources.files
        self._pipeline = pipeline
        self._stats = stats
        self._max_line = config.ingest.max_line_bytes
        self._idle = config.multiline.idle_timeout
        self._framers = [_framer_maker(config, i) for i in range(len(self._cfg.inputs))]
        data = config.persist.dir
        self._data = Path(data) if data is not None else None
        self._dir = self._data / "sources" if self._data is not None else None
        self._tailers: dict[tuple[int, int], Tailer] = {}  # by (device, inode)
        self._closing: list[Tailer] = []  # closed files whose last events are not durable yet
        self._offsets: dict[str, Entry] = {}  # key -> durable offset: the positions
        # Key -> where a file closed in this run was consumed to (ahead of its durable
        # offset): found again by a glob (app.log.1), it goes on from there.
        self._consumed: dict[str, int] = {}
        self._first_start = True
        self._task: asyncio.Task[None] | None = None
        self._dirty = False
        self._saved_at = 0.0
        self._waiting = 0
        self._warned: dict[str, int] = {}  # glob -> count last warned about
        self._unreadable: set[str] = set()  # paths warned about (bounded: MAX_UNREADABLE)
        self._bytes = 0
        self._rotations = 0
        self._truncations = 0
        self._lines_closed = 0  # lines of files closed since (their tailers are gone)

    # --- component -----------------------------------------------------------------

    async def start(self) -> None:
        if self._dir is not None and self._data is not None:
            await asyncio.to_thread(positions.remove_leftover, self._dir)
            doc = await asyncio.to_thread(positions.load, self._dir)
            if doc is not None:
                self._first_start = False
                self._offsets = dict(doc.files)
                after = doc.durable_id
                if after > self._pipeline.last_id:
                    # Saved after events the segments lack (a restored backup cut
                    # below it): trusting it would skip those lines. The blocks say it.
                    log_event(logger, logging.WARNING, "positions_ahead_of_data", saved=after)
                    self._offsets, after = {}, 0
                # The blocks stored after that save may name later offsets: take them.
                stored = await asyncio.to_thread(stored_offsets, self._data, after)
                for key, offset in stored.items():
                    entry = self._offsets.get(key)
                    if entry is not None and offset > entry.offset:
                        self._offsets[key] = msgspec.structs.replace(entry, offset=offset)
                    elif entry is None:
                        self._offsets[key] = Entry("", -1, -1, offset)
            else:
                # Saved before the first read: from now on, no positions file means
                # no block of this source either (recovery need not read segments).
                await asyncio.to_thread(positions.save, self._dir, self._pipeline.last_id, {})
        self._pipeline.on_durable(self._durable_moved)
        self._task = asyncio.create_task(self._run(), name="file-source")

    async def stop(self, deadline: float | None = None) -> None:
        """Stop reading; hand on what the framers hold (an unfinished line stays in
        the file: the next start reads it whole)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for tailer in self._tailers.values():
            if tailer.holding:
                tailer.flush_held(self._pipeline)

    async def close(self) -> None:
        """After the drain: save the positions of everything durable, close the files."""
        self._pipeline.remove_durable_listener(self._durable_moved)
        self._durable_moved(self._pipeline.durable_id)
        await self._save(force=True)
        for tailer in self._tailers.values():
            tailer.close()
        self._tailers.clear()

    def readings(self, out: Readings) -> None:
        out.add(m.FILES_WATCHED, len(self._tailers))
        out.add(m.FILES_WAITING, self._waiting)
        out.add(m.FILE_READ_BYTES, self._bytes)
        lines = self._lines_closed + sum(t.lines for t in self._tailers.values())
        out.add(m.FILE_LINES, lines)
        out.add(m.FILE_ROTATIONS, self._rotations)
        out.add(m.FILE_TRUNCATIONS, self._truncations)

    # --- the loop ------------------------------------------------------------------

    async def _run(self) -> None:
        poll = self._cfg.poll_interval
        next_scan = 0.0
        while True:
            now = time.monotonic()
            if now >= next_scan:
                found = await asyncio.to_thread(scan, self._cfg.inputs)
                self._check_open_files()
                self._open_new(found)
                self._first_start = False  # files found from now on are new: read whole
                next_scan = now + poll
            progressed = await self._read_round()
            self._flush_idle(time.monotonic())
            await self._save()
            if not progressed:
                await asyncio.sleep(min(poll, IDLE_READ_S))

    async def _read_round(self) -> bool:
        """Read every file that grew, a chunk at a time, to its end; True if any did."""
        progressed = False
        chunk = self._cfg.read_bytes
        for ident, tailer in list(self._tailers.items()):
            for _ in range(ROUND_CHUNKS):
                if tailer.id is None and not self._reidentify(tailer):
                    break
                # A file that did not grow costs one fstat, not a thread's round trip.
                if os.fstat(tailer.fd).st_size <= tailer.read_to:
                    break
                data = await asyncio.to_thread(os.pread, tailer.fd, chunk, tailer.read_to)
                if not data:
                    break
                progressed = True
                self._bytes += len(data)
                await self._wait(self._process(tailer, data))
                self._count_truncated(tailer)
                if len(data) < chunk:
                    break
            if tailer.gone and self._done_with(tailer):
                self._finish(ident, tailer)
        return progressed

    def _process(self, tailer: Tailer, data: bytes) -> Offered | None:
        """Frame and submit one read, its time counted in this turn's intake budget
        (pipeline/turns.py): TCP reads after it in the same turn wait for the next.
        Between two reads the task awaits the thread's `pread`, so queries get
        the loop at least once per `read_bytes` processed."""
        answer: list[Offered | None] = [None]

        def process(chunk: bytes) -> None:
            answer[0] = tailer.take(chunk, self._pipeline)

        self._pipeline.intake.run(process, data)
        return answer[0]

    def _done_with(self, tailer: Tailer) -> bool:
        """A rotated file at its end is closed once no byte came for rotate_wait."""
        quiet_since = max(tailer.gone_at, tailer.last_data)
        return time.monotonic() - quiet_since >= self._cfg.rotate_wait

    async def _wait(self, offered: Offered | None) -> None:
        """Backpressure: a full queue stops reading until it has room again."""
        if offered is None or not offered.pause:
            return
        room: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not room.done():
                room.set_result(None)

        self._pipeline.queue.on_space(wake)
        await room

    def _count_truncated(self, tailer: Tailer) -> None:
        cut = tailer.truncated - tailer.truncated_lines
        if cut:
            self._stats.truncate(LISTENER, cut)
            tailer.truncated_lines = tailer.truncated

    def _flush_idle(self, now: float) -> None:
        for tailer in self._tailers.values():
            if tailer.holding and now - tailer.last_data >= self._idle:
                tailer.flush_held(self._pipeline)

    # --- files coming and going ----------------------------------------------------

    def _check_open_files(self) -> None:
        """Rotation (the path names another file, or none) and truncation."""
        for tailer in self._tailers.values():
            try:
                st = os.fstat(tailer.fd)
            except OSError:
                tailer.gone, tailer.gone_at = True, time.monotonic()
                continue
            if st.st_size < tailer.read_to:
                self._truncations += 1
                log_event(logger, logging.INFO, "file_truncated", path=tailer.path)
                if tailer.holding:
                    tailer.flush_held(self._pipeline)
                if tailer.id is not None:
                    self._offsets.pop(tailer.id.key, None)  # the old content's position
                    self._dirty = True
                tailer.restart(self._framer_of(tailer))
                continue
            try:
                at_path = os.stat(tailer.path)
                moved = (at_path.st_dev, at_path.st_ino) != (st.st_dev, st.st_ino)
            except FileNotFoundError:
                moved = True
            if moved and not tailer.gone:
                tailer.gone, tailer.gone_at = True, time.monotonic()
                self._rotations += 1
                why = "deleted" if st.st_nlink == 0 else "renamed"
                log_event(logger, logging.INFO, "file_rotated", path=tailer.path, how=why)

    def _framer_of(self, tailer: Tailer) -> LineFramer:
        return self._framers[tailer.input]()

    def _reidentify(self, tailer: Tailer) -> bool:
        """After a truncation: the new content's identity, once it has a first line."""
        fid = identify(tailer.fd)
        if fid is None:
            return False
        tailer.id = fid
        self._offsets[fid.key] = Entry(tailer.path, fid.dev, fid.ino, 0)
        self._dirty = True
        return True

    def _open_new(self, found: Found) -> None:
        """Open the files not followed yet, up to max_open_files; warn past it."""
        limit = self._cfg.max_open_files
        present = {(c.dev, c.ino) for c in found.candidates}
        done = {(e.dev, e.ino): self._consumed.get(k, e.offset) for k, e in self._offsets.items()}
        waiting = 0
        for cand in found.candidates:
            ident = (cand.dev, cand.ino)
            if ident in self._tailers or done.get(ident) == cand.size:
                continue  # followed, or closed after it was read to its end
            if len(self._tailers) >= limit:
                waiting += 1
                continue
            self._open(cand)
        self._waiting = waiting
        if waiting:
            self._warn_limit(found)
        else:
            self._warned.clear()
        self._prune(present)

    def _warn_limit(self, found: Found) -> None:
        """Name each glob that matches more files than may be open, once per count."""
        limit = self._cfg.max_open_files
        for pattern, count in found.per_glob.items():
            if count > limit and self._warned.get(pattern) != count:
                self._warned[pattern] = count
                log_event(
                    logger,
                    logging.WARNING,
                    "too_many_files",
                    glob=pattern,
                    matched=count,
                    max_open_files=limit,
                    waiting=self._waiting,
                    reason=f"{pattern} matches {count} files, more than "
                    f"sources.files.max_open_files ({limit}): the rest wait for a slot",
                )
        if self._waiting and not self._warned:
            # No single glob is over the limit, all of them together are.
            self._warned["*"] = self._waiting
            log_event(
                logger,
                logging.WARNING,
                "too_many_files",
                glob="(all inputs)",
                matched=sum(found.per_glob.values()),
                max_open_files=limit,
                waiting=self._waiting,
                reason=f"the globs match more files than sources.files.max_open_files "
                f"({limit}): {self._waiting} wait for a slot",
            )

    def _open(self, cand: Candidate) -> None:
        try:
            fd = os.open(cand.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            if cand.path not in self._unreadable:  # once per path, not every scan
                if len(self._unreadable) >= MAX_UNREADABLE:
                    self._unreadable.clear()
                self._unreadable.add(cand.path)
                log_event(
                    logger, logging.WARNING, "file_unreadable", path=cand.path, error=str(exc)
                )
            return
        self._unreadable.discard(cand.path)
        try:
            st = os.fstat(fd)
            fid = identify(fd) if (st.st_dev, st.st_ino) == (cand.dev, cand.ino) else None
        except OSError:
            fid = None
        if fid is None:
            os.close(fd)  # replaced meanwhile, or no first line yet: next scan
            return
        offset = self._start_offset(fid, fd, st.st_size)
        self._offsets[fid.key] = Entry(cand.path, fid.dev, fid.ino, offset)
        self._dirty = True
        framer = self._framers[cand.input]()
        service = self._cfg.inputs[cand.input].service
        tailer = Tailer(cand.path, fd, fid, offset, service, framer, self._max_line)
        tailer.input = cand.input
        self._tailers[(fid.dev, fid.ino)] = tailer
        log_event(logger, logging.DEBUG, "file_opened", path=cand.path, offset=offset)

    def _start_offset(self, fid: FileId, fd: int, size: int) -> int:
        """Where reading starts: the saved position; for a file present at the very
        first start with read_from: end, after its last complete line; else 0."""
        entry = self._offsets.get(fid.key)
        if entry is not None:
            # Closed earlier in this run: on from where it was consumed, not durable.
            offset = self._consumed.pop(fid.key, entry.offset)
            if offset > size:
                self._truncations += 1  # shorter than read: truncated meanwhile
                return 0
            return offset
        if not (self._first_start and self._cfg.read_from == "end"):
            return 0
        back = min(size, self._max_line + 1)
        tail = os.pread(fd, back, size - back)
        return size - back + tail.rfind(b"\n") + 1

    def _finish(self, ident: tuple[int, int], tailer: Tailer) -> None:
        """A rotated or deleted file read to its end: its last line goes, it closes."""
        tailer.finish(self._pipeline)
        self._count_truncated(tailer)
        tailer.close()
        del self._tailers[ident]
        self._lines_closed += tailer.lines
        if tailer.id is not None:
            self._consumed[tailer.id.key] = tailer.consumed
        if tailer.pending:
            self._closing.append(tailer)  # its position still moves as events turn durable
        log_event(logger, logging.DEBUG, "file_closed", path=tailer.path, offset=tailer.read_to)

    def _prune(self, present: set[tuple[int, int]]) -> None:
        """Positions of files neither followed nor matched by a glob any more go."""
        keep = {t.id.key for t in [*self._tailers.values(), *self._closing] if t.id is not None}
        for key, entry in list(self._offsets.items()):
            if entry.dev < 0 and self._waiting:
                continue  # known from the blocks only: maybe a file still waiting for a slot
            if key not in keep and (entry.dev, entry.ino) not in present:
                del self._offsets[key]
                self._consumed.pop(key, None)
                self._dirty = True

    # --- positions -----------------------------------------------------------------

    def _durable_moved(self, durable_id: int) -> None:
        for tailer in [*self._tailers.values(), *self._closing]:
            fid = tailer.id
            if tailer.pending and tailer.durable_moved(durable_id) and fid is not None:
                entry = self._offsets.get(fid.key)
                if entry is not None and entry.offset != tailer.durable:
                    self._offsets[fid.key] = msgspec.structs.replace(entry, offset=tailer.durable)
                    self._dirty = True
        if self._closing:
            self._closing = [t for t in self._closing if t.pending]

    async def _save(self, *, force: bool = False) -> None:
        if self._dir is None or not self._dirty:
            return
        now = time.monotonic()
        if not force and now - self._saved_at < SAVE_EVERY_S:
            return
        self._saved_at = now
        self._dirty = False
        durable = self._pipeline.durable_id
        files = dict(self._offsets)
        try:
            await asyncio.to_thread(positions.save, self._dir, durable, files)
        except OSError as exc:
            self._dirty = True
            log_event(logger, logging.ERROR, "positions_not_saved", error=str(exc))


def _framer_maker(config: Config, i: int) -> Callable[[], LineFramer]:
    """The framer of input `i`: its multi-line grouping (true, false or a rule's name)."""
    entry = config.sources.files.inputs[i]
    max_line = config.ingest.max_line_bytes
    multiline = config.multiline
    rule = entry.multiline
    if rule is False:
        return lambda: LineFramer(max_line, None)
    if isinstance(rule, str):
        multiline = msgspec.structs.replace(multiline, enabled=True)
        grouper = Grouper([r for r in multiline.rules if r.name == rule])
    else:
        grouper = Grouper([r for r in multiline.rules if not r.listeners])
    return lambda: LineFramer(max_line, multiline, grouper)

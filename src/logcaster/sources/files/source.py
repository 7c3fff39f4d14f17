"""The file-tail source (`sources.files`): follows files and feeds their lines to
the pipeline, as TCP ingest does with a connection (docs/file-source.md).

One task owns every `Tailer`: it scans the globs every `poll_interval`, checks
each open file for rotation and truncation, reads whatever grew in chunks of
`read_bytes` (in a thread: a read may block on a slow disk), and waits for room
whenever the queue is full, whatever the queue policy (backpressure: the file
simply stays unread). Past `max_open_files` files take turns (waiting.py).
Positions: see tailer.py, positions.py and recovery.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from pathlib import Path

import msgspec

from logcaster.config import Config
from logcaster.log import log_event
from logcaster.metrics.registry import Readings
from logcaster.pipeline.framing import LineFramer
from logcaster.pipeline.pipeline import Offered, Pipeline
from logcaster.sources.files import metrics as m
from logcaster.sources.files import positions
from logcaster.sources.files.discovery import Candidate, Found, scan
from logcaster.sources.files.framers import framer_maker
from logcaster.sources.files.identity import FileId, identify, identify_path, rewritten
from logcaster.sources.files.positions import MAX_ENTRIES, Entry
from logcaster.sources.files.recovery import stored_offsets
from logcaster.sources.files.rescue import rotated_away
from logcaster.sources.files.tailer import Tailer
from logcaster.sources.files.waiting import turn_s, warn_limit
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
        self._framers = [framer_maker(config, i) for i in range(len(self._cfg.inputs))]
        data = config.persist.dir
        self._data = Path(data) if data is not None else None
        self._dir = self._data / "sources" if self._data is not None else None
        self._tailers: dict[tuple[int, int], Tailer] = {}  # by (device, inode)
        self._closing: list[Tailer] = []  # closed files whose last events are not durable yet
        self._offsets: dict[str, Entry] = {}  # key -> durable offset: the positions
        # Key -> where a file closed in this run was consumed to (ahead of its durable
        # offset): found again by a glob (app.log.1), it goes on from there.
        self._consumed: dict[str, int] = {}
        # Key -> how far a file closed in this run was read (past `consumed` by an
        # unfinished line): at that size it has nothing new, it is not opened again.
        self._ends: dict[str, int] = {}
        # (dev, ino) -> (size, mtime_ns, key) of files matched and not open: whether
        # a saved position is this file's is known without reading it at every scan.
        self._keys: dict[tuple[int, int], tuple[int, int, str | None]] = {}
        self._since: dict[tuple[int, int], float] = {}  # waiting for a slot since
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
        """Stop reading. What the framers hold (an event waiting for continuation
        lines, an unfinished line) is not sent: the durable position is before it,
        so the next start reads it whole, continuation lines and all."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

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
        if not self._first_start:
            await self._finish_rotated_away()
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
                    tailer.at_end = True
                    break
                if tailer.at_end:
                    # Grew after a pause: maybe truncated and written past the old
                    # offset since the last check. Its head tells.
                    tailer.at_end = False
                    if tailer.id is not None and rewritten(tailer.fd, tailer.id):
                        self._restart(tailer)
                        continue
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
            if st.st_size < tailer.read_to or (
                tailer.id is not None and rewritten(tailer.fd, tailer.id)
            ):
                self._restart(tailer)
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

    def _restart(self, tailer: Tailer) -> None:
        """Truncated (shorter than read, or its first bytes changed): from 0 again."""
        self._truncations += 1
        log_event(logger, logging.INFO, "file_truncated", path=tailer.path)
        if tailer.holding:
            tailer.flush_held(self._pipeline)
        self._count_truncated(tailer)
        if tailer.id is not None:
            self._offsets.pop(tailer.id.key, None)  # the old content's position
            self._dirty = True
        tailer.restart(self._framer_of(tailer))

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
        """Open the files not followed yet, up to max_open_files: past it they take
        turns (waiting.py) and are warned about."""
        limit = self._cfg.max_open_files
        now = time.monotonic()
        known = {(e.dev, e.ino) for e in self._offsets.values()}
        keys: dict[tuple[int, int], tuple[int, int, str | None]] = {}
        new: list[Candidate] = []
        for cand in found.candidates:
            ident = (cand.dev, cand.ino)
            if ident in self._tailers:
                continue
            if ident in known and self._read_whole(cand, keys):
                continue  # closed after it was read to its end, and still the same
            new.append(cand)
        self._keys = keys  # only files matched now: bounded by the globs
        self._touch()
        if len(new) > limit - len(self._tailers):
            self._take_turns(now, len(new) - (limit - len(self._tailers)))
        new.sort(key=lambda c: self._since.get((c.dev, c.ino), now))  # longest first
        since: dict[tuple[int, int], float] = {}
        for cand in new:
            if len(self._tailers) >= limit:
                since[(cand.dev, cand.ino)] = self._since.get((cand.dev, cand.ino), now)
            else:
                self._open(cand)
        self._since = since
        self._waiting = len(since)
        if since:
            warn_limit(found, limit, self._waiting, self._warned)
        else:
            self._warned.clear()

    async def _finish_rotated_away(self) -> None:
        """Files renamed away while down with an unread end: read it, then close
        them as after a rotation (rescue.py)."""
        found = await asyncio.to_thread(rotated_away, dict(self._offsets), self._cfg.inputs)
        for cand in found[: self._cfg.max_open_files]:
            self._open(cand)
            tailer = self._tailers.get((cand.dev, cand.ino))
            if tailer is not None:
                tailer.gone, tailer.gone_at = True, time.monotonic()
                log_event(logger, logging.INFO, "file_rotated", path=cand.path, how="while down")

    def _read_whole(
        self, cand: Candidate, keys: dict[tuple[int, int], tuple[int, int, str | None]]
    ) -> bool:
        """Whether this file (same dev, inode AND first line as a saved position) was
        read to its end: a file rewritten to the same size is new content."""
        ident = (cand.dev, cand.ino)
        cached = self._keys.get(ident)
        if cached is not None and cached[:2] == (cand.size, cand.mtime_ns):
            key = cached[2]
        else:
            fid = identify_path(cand.path)
            key = fid.key if fid is not None and (fid.dev, fid.ino) == ident else None
        keys[ident] = (cand.size, cand.mtime_ns, key)
        entry = self._offsets.get(key) if key is not None else None
        if key is None or entry is None:
            return False
        return self._ends.get(key, self._consumed.get(key, entry.offset)) == cand.size

    def _take_turns(self, now: float, wanted: int) -> None:
        """Close up to `wanted` open files read to their end that held a slot for a
        turn, longest open first; their position stays in memory (waiting.py)."""
        turn = turn_s(self._cfg.rotate_wait, self._cfg.poll_interval)
        ready = [
            (ident, t)
            for ident, t in self._tailers.items()
            if not t.gone and t.id is not None and now - t.opened_at >= turn
        ]
        ready.sort(key=lambda item: item[1].opened_at)
        for ident, tailer in ready[:wanted]:
            try:
                at_end = os.fstat(tailer.fd).st_size <= tailer.read_to
            except OSError:
                continue
            if at_end:
                self._park(ident, tailer)

    def _touch(self) -> None:
        """Positions of files matched now move to the end (most recently seen); past
        MAX_ENTRIES the least recently seen go. A file that stops matching keeps its
        position (a log dir moved away and back, a symlink switched back)."""
        seen = [t.id.key for t in self._tailers.values() if t.id is not None]
        seen += [k for _, _, k in self._keys.values() if k is not None]
        for key in seen:
            entry = self._offsets.pop(key, None)
            if entry is not None:
                self._offsets[key] = entry
        keep = {t.id.key for t in self._closing if t.id is not None}
        for key in list(self._offsets)[: max(0, len(self._offsets) - MAX_ENTRIES)]:
            if key not in keep:
                del self._offsets[key]
                self._consumed.pop(key, None)
                self._ends.pop(key, None)
                self._dirty = True

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
            self._ends.pop(fid.key, None)
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
        self._park(ident, tailer)

    def _park(self, ident: tuple[int, int], tailer: Tailer) -> None:
        """Close a file, remembering where it was consumed (what a framer held is
        read again from there if it is opened again)."""
        self._count_truncated(tailer)
        tailer.close()
        del self._tailers[ident]
        # Lines of an event still held are read again if the file is opened again.
        self._lines_closed += tailer.lines - tailer.held_lines
        if tailer.id is not None:
            self._consumed[tailer.id.key] = tailer.consumed
            self._ends[tailer.id.key] = tailer.read_to
        if tailer.pending:
            self._closing.append(tailer)  # its position still moves as events turn durable
        log_event(logger, logging.DEBUG, "file_closed", path=tailer.path, offset=tailer.read_to)

    # --- positions -----------------------------------------------------------------

    def _durable_moved(self, durable_id: int) -> None:
        # Closed files first: one opened again in this run is further on.
        for tailer in [*self._closing, *self._tailers.values()]:
            fid = tailer.id
            if tailer.pending and tailer.durable_moved(durable_id) and fid is not None:
                entry = self._offsets.get(fid.key)
                if entry is not None and entry.offset < tailer.durable:
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

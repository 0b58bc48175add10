"""The result cache: finished transforms as files, named by what made them.

Key: md5 over the source's identity (path, size, mtime), the canonical spec, the
negotiated format and the engine's version, as sorl names thumbnails; the file
lives at ``TRANSFORMS_CACHE_DIR/ab/cd/<key>``. Anything that changes the output
changes the key, so entries are never invalidated, only evicted.

File format: one header line ``mediasite-cache 1 <content-type>\\n`` and then the
body, the way nginx's proxy cache keeps its header in the file. A hit needs one
open, one small read and one fstat, and the body goes out with sendfile from the
offset after the header (``streaming.ranges.FileSlice``), Range included.

Writes: a ``FileFill`` under a temporary name, renamed into place only when the
tool exited 0 and the bytes on disk are exactly the bytes streamed. Interrupted
renders (client gone, failing tool, Ctrl-C in ``--warm``) delete the temporary
file, so a reader never sees a partial entry.

Filling while streaming: under gunicorn with splice the worker tee(2)s each chunk
of the tool's pipe into a private pipe and splices that into the cache file, so
the fill is zero-copy like the response; elsewhere the chunk read for the client
is written from the same buffer. tee + splice was chosen over a copy in a Python
loop because the point of the splice path is that the bytes never enter Python;
a copy for the cache would bring back exactly the per-byte CPU cost the splice
path removes (about 0.4 CPU-s per GiB, see docs/benchmarks.md).

Coalescing: the first request for a missing result takes an exclusive flock on
``<key>.lock`` (works across threads and gunicorn worker processes: each open()
is its own lock owner) and renders; the others poll, without holding a thread's
CPU, until the entry appears or the lock is free again (then the render failed
or was interrupted, and one of them renders). A render that streams publishes
its temporary file's name in the lock file; the others then follow that file as
it grows (``streaming.follow``) instead of waiting for the end. The lock file is unlinked by its
holder before it unlocks, and a taker checks that the file it locked is still
the one at the path, so lock files do not pile up.

Size bound: each process keeps a running total, recounted from disk whenever it
has itself added 10% of the bound (so the other workers' additions are seen and
N workers overshoot by at most N x 10%) and, past ``TRANSFORMS_CACHE_MAX_BYTES``,
removes least recently used entries (by atime, which hits refresh at most once a
minute) down to 90% of the bound.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from streaming.fill import TEMP_SUFFIX, FileFill
from streaming.follow import GrowingFile

from .conf import conf

logger = logging.getLogger(__name__)

MAGIC = b"mediasite-cache 1 "
HEADER_LIMIT = 256
LOCK_SUFFIX = ".lock"
TOUCH_INTERVAL_NS = 60 * 10**9
EVICT_TO = 0.9
RESCAN_AFTER = 0.1  # of the bound, added by this process since its last count


def cache_key(*parts: str) -> str:
    """md5 of the parts, one per line (not a security boundary: a name, as in sorl)."""
    return hashlib.md5("\n".join(parts).encode(), usedforsecurity=False).hexdigest()


def header_line(content_type: str) -> bytes:
    return MAGIC + content_type.encode("ascii") + b"\n"


def read_header(fd: int) -> tuple[str, int]:
    """The content type in a cache file's header line and the offset of its body; ValueError if there is none."""
    head = os.pread(fd, HEADER_LIMIT, 0)
    end = head.find(b"\n")
    if not head.startswith(MAGIC) or end < 0:
        raise ValueError("not a cache file")
    return head[len(MAGIC):end].decode("ascii"), end + 1


@dataclass
class Entry:
    """An open cache hit; the caller owns ``file``."""

    file: object
    content_type: str
    offset: int  # where the body starts
    size: int  # body bytes
    mtime: float


@dataclass
class Following:
    """Another request's render, still streaming into its temporary file: follow it."""

    body: GrowingFile
    content_type: str


class RenderLock:
    """An exclusive flock on ``<key>.lock``; ``release()`` unlinks then unlocks. Idempotent."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd
        self._lock = threading.Lock()

    @classmethod
    def try_acquire(cls, path: Path) -> RenderLock | None:
        path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return None
            except BaseException:
                os.close(fd)
                raise
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                return cls(path, fd)
            os.close(fd)  # the holder before us unlinked it: lock the new one

    def publish(self, temp: Path) -> None:
        """Name the file this render fills, so identical requests can follow it as it grows."""
        with self._lock:
            if self._fd >= 0:
                os.pwrite(self._fd, os.fsencode(temp), 0)

    def release(self) -> None:
        with self._lock:
            if self._fd < 0:
                return
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            os.close(self._fd)
            self._fd = -1


class ResultCache:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self._total: int | None = None
        self._added_since_scan = 0
        self._total_lock = threading.Lock()

    def path_for(self, key: str) -> Path:
        return self.root / key[:2] / key[2:4] / key

    # --- reading --------------------------------------------------------------

    def open(self, key: str) -> Entry | None:
        """The entry for ``key``, opened, or None; refreshes its atime for LRU at most once a minute."""
        path = self.path_for(key)
        try:
            file = open(path, "rb", buffering=0)  # the response owns and closes it
        except OSError:  # no entry, or an unusable folder (the claim that follows says which)
            return None
        try:
            content_type, offset = read_header(file.fileno())
            info = os.fstat(file.fileno())
            now = time.time_ns()
            if now - info.st_atime_ns > TOUCH_INTERVAL_NS:
                os.utime(file.fileno(), ns=(now, info.st_mtime_ns))
        except (OSError, ValueError):  # UnicodeDecodeError is a ValueError
            file.close()
            logger.warning("ignoring unreadable cache file %s", path)
            return None
        return Entry(file, content_type, offset, info.st_size - offset, info.st_mtime)

    # --- coalescing -----------------------------------------------------------

    def claim(self, key: str, wait: float, stall: float = 30.0) -> Entry | RenderLock | Following | None:
        """An entry (someone rendered it), the render lock (our turn), someone's render to follow
        (it streams into a published file), or None (waited ``wait`` s for a render that does not stream)."""
        lock_path = self.path_for(key).with_name(key + LOCK_SUFFIX)
        deadline = time.monotonic() + wait
        pause = 0.005
        while True:
            entry = self.open(key)
            if entry is not None:
                return entry
            lock = RenderLock.try_acquire(lock_path)
            if lock is not None:
                entry = self.open(key)  # finished between our look and our lock
                if entry is not None:
                    lock.release()
                    return entry
                return lock
            following = self.follow(key, lock_path, stall)
            if following is not None:
                return following
            if time.monotonic() + pause > deadline:
                return None
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def follow(self, key: str, lock_path: Path, stall: float) -> Following | None:
        """The temporary file named in the lock file, opened at its body, or None if there is none (yet)."""
        try:
            published = lock_path.read_bytes()
        except FileNotFoundError:
            return None
        temp = Path(os.fsdecode(published))
        if not published or temp.parent != lock_path.parent or not temp.name.startswith("." + key):
            return None  # nothing published yet (or not ours to read)
        try:
            fd = os.open(temp, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None  # finished or abandoned meanwhile: look again
        try:
            content_type, offset = read_header(fd)
        except (OSError, ValueError):  # UnicodeDecodeError is a ValueError
            os.close(fd)
            return None
        return Following(GrowingFile(fd, self.path_for(key), offset, stall), content_type)

    # --- writing --------------------------------------------------------------

    def fill(self, key: str, content_type: str) -> FileFill:
        return FileFill(self.path_for(key), header_line(content_type))

    def store(self, key: str, content_type: str, data: bytes) -> bool:
        fill = self.fill(key, content_type)
        try:
            fill.write(data)
        except BaseException:
            fill.abort()
            raise
        committed = fill.commit()
        if committed:
            self.added(fill.header_size + len(data))
        return committed

    def added(self, size: int) -> None:
        """Count a new entry; evict least recently used entries when past the bound."""
        if self.max_bytes <= 0:
            return
        with self._total_lock:
            self._added_since_scan += size
            if self._total is None or self._added_since_scan > self.max_bytes * RESCAN_AFTER:
                # other worker processes add entries too: recount from disk now and then
                self._total = sum(entry_size for _, entry_size, _ in self.entries())
                self._added_since_scan = 0
            else:
                self._total += size
            over = self._total > self.max_bytes
        if over:
            self.evict(int(self.max_bytes * EVICT_TO))

    def evict(self, target: int) -> int:
        """Remove the least recently used entries until the total is at most ``target``; returns how many."""
        entries = sorted(self.entries(), key=lambda item: item[2])
        total = sum(size for _, size, _ in entries)
        removed = 0
        for path, size, _ in entries:
            if total <= target:
                break
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            total -= size
            removed += 1
        with self._total_lock:
            self._total = total
        if removed:
            logger.info("result cache: evicted %d entries, %d bytes left", removed, total)
        return removed

    # --- maintenance ----------------------------------------------------------

    def entries(self) -> Iterator[tuple[Path, int, int]]:
        """(path, size, atime_ns) of every finished entry."""
        for path in self._files():
            name = path.name
            if name.startswith(".") or name.endswith(LOCK_SUFFIX):
                continue
            try:
                info = path.stat()
            except FileNotFoundError:
                continue
            yield path, info.st_size, info.st_atime_ns

    def temp_files(self) -> list[Path]:
        return [path for path in self._files() if path.name.startswith(".") and path.name.endswith(TEMP_SUFFIX)]

    def _files(self) -> Iterator[Path]:
        if not self.root.is_dir():
            return
        for folder, _, files in os.walk(self.root):
            for name in files:
                yield Path(folder) / name

    def stats(self) -> dict[str, int]:
        sizes = [size for _, size, _ in self.entries()]
        return {
            "entries": len(sizes),
            "bytes": sum(sizes),
            "max_bytes": self.max_bytes,
            "temp_files": len(self.temp_files()),
        }

    def purge(self) -> int:
        """Remove every entry and every temporary file nobody is writing; returns how many files."""
        removed = 0
        for path, _, _ in list(self.entries()):
            path.unlink(missing_ok=True)
            removed += 1
        for path in self.temp_files():
            if _writer_alive(path):
                continue
            path.unlink(missing_ok=True)
            removed += 1
        with self._total_lock:
            self._total = None
        return removed


def _writer_alive(temp: Path) -> bool:
    """A temp name carries the writer's pid: keep files whose writer still runs."""
    parts = temp.name.split(".")
    try:
        pid = int(parts[-3])
    except (IndexError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    return True


_caches: dict[tuple[str, int], ResultCache] = {}
_caches_lock = threading.Lock()


def result_cache() -> ResultCache | None:
    """This process's cache for the configured folder and bound, or None when caching is off."""
    if not conf.CACHE:
        return None
    root = conf.CACHE_DIR
    if not root:
        return None
    key = (str(root), conf.CACHE_MAX_BYTES)
    with _caches_lock:
        cache = _caches.get(key)
        if cache is None:
            cache = _caches[key] = ResultCache(Path(root), key[1])
        return cache

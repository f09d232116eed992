"""The settlement spool: settles the database could not take, kept on local disk.

One JSON object per line, appended under an exclusive lock and fsync'd before
`settle` returns, so a crash right after still loses nothing. The ledger
replays it (at open, and from its background loop while it is not empty)
through the normal settle, which is idempotent by request id: an entry that
lands twice (two replicas sharing the file, a crash between landing and
removing it) charges once.

The lock is a separate `.lock` file that is never replaced, so appenders in
other processes never write into a file that a replay has just rewritten.
An entry that can never land (the database refuses it for a reason other than
being unreachable) moves to `<name>.rejected.jsonl`, logged, so it neither
blocks the others nor disappears.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class Spool:
    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()
        self.rejected = self.path.with_name(self.path.stem + ".rejected.jsonl")
        self._lockfile = self.path.with_name(self.path.name + ".lock")
        self._thread_lock = threading.Lock()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._thread_lock:
            fd = os.open(self._lockfile, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # closing releases the flock

    def append(self, entry: dict[str, Any]) -> str:
        """Write one entry durably; returns its id."""
        entry = {"id": uuid.uuid4().hex, "spooled_at": time.time(), **entry}
        line = (json.dumps(entry, separators=(",", ":")) + "\n").encode()
        with self._locked():
            _append(self.path, line)
        return str(entry["id"])

    def pending(self) -> list[dict[str, Any]]:
        """Every entry not yet landed, oldest first (a torn last line is skipped)."""
        with self._locked():
            return self._read()

    def _read(self) -> list[dict[str, Any]]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        entries = []
        for number, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                # A crash mid-append leaves at most one torn line; keep it for people.
                log.error("ledger spool %s: line %d is not JSON; moved aside", self.path, number)
                _append(self.rejected, line + b"\n")
                continue
            if isinstance(entry, dict) and "id" in entry:
                entries.append(entry)
        return entries

    def remove(self, ids: set[str]) -> None:
        """Drop landed entries; entries appended meanwhile stay."""
        if not ids:
            return
        with self._locked():
            keep = [e for e in self._read() if e["id"] not in ids]
            tmp = self.path.with_name(self.path.name + ".tmp")
            with open(tmp, "wb") as out:
                for entry in keep:
                    out.write((json.dumps(entry, separators=(",", ":")) + "\n").encode())
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
            _fsync_dir(self.path.parent)

    def reject(self, entry: dict[str, Any], reason: str) -> None:
        with self._locked():
            line = json.dumps({**entry, "rejected": reason}, separators=(",", ":")) + "\n"
            _append(self.rejected, line.encode())

    def depth(self) -> int:
        """How many settles wait in the spool (0 without reading when the file is empty)."""
        try:
            if self.path.stat().st_size == 0:
                return 0
        except FileNotFoundError:
            return 0
        with self._locked():
            return len(self._read())


def _append(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

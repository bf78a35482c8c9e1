"""What `ingest` remembers of the files it has read, so that work follows what is new.

A dump folder is read again every day with one more file in it, and a JSONL log grows at its
end. For each regular file read to its end, the store keeps its size, modification time and
SHA-256, and for JSONL the offset and line number of its last complete line with the hash of
everything before it. The next ingest skips a file whose bytes are the same, and reads a
grown JSONL file from where the last complete line ended, with its line numbers going on;
any other change reads the whole file again (re-reading stores nothing twice). A crash
before the mark is written only means the file is read again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tracewatch.monitor.store import Store

CHUNK = 1 << 20
APPENDABLE = (".jsonl", ".ndjson")  # plain, uncompressed line files only


@dataclass
class FilePlan:
    key: str  # the resolved path
    size: int
    mtime_ns: int
    unchanged: bool = False
    offset: int = 0  # where to start reading
    first_line: int = 0  # lines before that offset


@dataclass
class _Scan:
    sha256: str
    complete_bytes: int
    complete_sha256: str
    lines: int


def _complete_end(path: Path, upto: int) -> int:
    """Where the last complete line (one ending in a newline) within `upto` bytes ends."""
    with open(path, "rb") as fh:
        pos = upto
        while pos > 0:
            start = max(0, pos - CHUNK)
            fh.seek(start)
            nl = fh.read(pos - start).rfind(b"\n")
            if nl >= 0:
                return start + nl + 1
            pos = start
    return 0


def _prefix_sha256(path: Path, n: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        left = n
        while left > 0 and (chunk := fh.read(min(CHUNK, left))):
            h.update(chunk)
            left -= len(chunk)
    return h.hexdigest()


def _scan(path: Path, upto: int) -> _Scan:
    """One pass over the first `upto` bytes: their hash, and the hash and line count of
    everything up to the last complete line."""
    complete_bytes = _complete_end(path, upto)
    whole = hashlib.sha256()
    complete = hashlib.sha256().hexdigest() if complete_bytes == 0 else None
    lines = pos = 0
    with open(path, "rb") as fh:
        while pos < upto and (chunk := fh.read(min(CHUNK, upto - pos))):
            head = chunk[: max(0, complete_bytes - pos)]
            lines += head.count(b"\n")
            if complete is None and pos + len(chunk) >= complete_bytes:
                at = whole.copy()
                at.update(head)
                complete = at.hexdigest()
            whole.update(chunk)
            pos += len(chunk)
    return _Scan(whole.hexdigest(), complete_bytes, complete or whole.hexdigest(), lines)


def plan(store: Store, path: Path, reread: bool = False) -> FilePlan:
    st = path.stat()
    key = str(path.resolve())
    fp = FilePlan(key, st.st_size, st.st_mtime_ns)
    if reread:
        return fp
    rows = store.con.execute(
        "SELECT size, mtime_ns, sha256, complete_bytes, complete_sha256, lines"
        " FROM ingested_files WHERE path = ?",
        [key],
    ).fetchall()
    if not rows:
        return fp
    size, mtime_ns, sha, complete_bytes, complete_sha, lines = rows[0]
    if st.st_size == size:
        # same size and time: unchanged; same size, another time: unchanged if the same bytes
        fp.unchanged = st.st_mtime_ns == mtime_ns or _prefix_sha256(path, size) == sha
        return fp
    grown = st.st_size > size and path.name.lower().endswith(APPENDABLE) and complete_bytes
    if grown and _prefix_sha256(path, complete_bytes) == complete_sha:
        fp.offset, fp.first_line = complete_bytes, lines
    return fp


def remember(store: Store, fp: FilePlan) -> None:
    """Mark the file as read to its end (as it was when planned)."""
    scan = _scan(Path(fp.key), fp.size)
    store.con.execute(
        "INSERT OR REPLACE INTO ingested_files VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            fp.key,
            fp.size,
            fp.mtime_ns,
            scan.sha256,
            scan.complete_bytes,
            scan.complete_sha256,
            scan.lines,
            datetime.now(UTC),
        ],
    )

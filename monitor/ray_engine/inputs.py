"""Input dumps for a Ray run: local files and folders, or object-store URIs.

Each input gets a key from its location, size, modification time and the ingest options,
so a rerun recognises an input it already adapted, and a changed file is read again.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pyarrow import fs as pafs
from pydantic import BaseModel

from tracewatch.monitor.ingest import TRACE_SUFFIXES, IngestOptions, PathError, discover
from tracewatch.monitor.ray_engine.layout import filesystem
from tracewatch.monitor.rollup_store import digest


class InputFile(BaseModel):
    location: str  # absolute path or URI, what workers open
    display: str  # as the user named it, recorded as each interaction's source file
    size: int
    mtime_ns: int
    key: str


def _entry(
    location: str, info: pafs.FileInfo, opts: IngestOptions, display: str | None = None
) -> InputFile:
    mtime_ns = int(info.mtime_ns or 0)
    key = digest(location, info.size, mtime_ns, opts.format, opts.account)
    return InputFile(
        location=location,
        display=display or location,
        size=int(info.size or 0),
        mtime_ns=mtime_ns,
        key=key,
    )


def find_inputs(paths: list[str], opts: IngestOptions) -> tuple[list[InputFile], list[str]]:
    """Inputs in a stable order, and the files skipped for their suffix (as `ingest` does)."""
    if "-" in paths:
        raise PathError("-: the Ray engine reads files or URIs, not stdin")
    found: list[InputFile] = []
    skipped: list[str] = []
    local = [p for p in paths if "://" not in p]
    if local:
        inputs, skip = discover(local)
        skipped.extend(skip)
        lfs = pafs.LocalFileSystem()
        for p in inputs:
            path = str(Path(p).resolve())
            found.append(_entry(path, lfs.get_file_info(path), opts, display=str(p)))
    for uri in (p for p in paths if "://" in p):
        fs, root = filesystem(uri)
        info = fs.get_file_info(root)
        if info.type == pafs.FileType.NotFound:
            raise PathError(f"{uri}: no such file or folder")
        infos = (
            [info]
            if info.type == pafs.FileType.File
            else sorted(
                fs.get_file_info(pafs.FileSelector(root, recursive=True)), key=lambda i: i.path
            )
        )
        scheme = uri.split("://", 1)[0]
        for i in infos:
            if i.type != pafs.FileType.File or i.base_name.startswith("."):
                continue
            where = f"{scheme}://{i.path}"
            if i.base_name.lower().endswith(TRACE_SUFFIXES):
                found.append(_entry(where, i, opts))
            else:
                skipped.append(where)
    return found, skipped


@contextmanager
def local_copy(item: InputFile) -> Iterator[Path]:
    """The input as a local path: itself, or a copy of the object with its name and mtime.

    The adapters read paths (gzip, zip archives), and a trace without its own time takes the
    file's modification time, so the copy keeps both.
    """
    if "://" not in item.location:
        yield Path(item.location)
        return
    fs, path = filesystem(item.location)
    folder = tempfile.mkdtemp(prefix="tracewatch-input-")
    try:
        target = Path(folder) / path.rsplit("/", 1)[-1]
        with fs.open_input_stream(path) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        os.utime(target, ns=(item.mtime_ns, item.mtime_ns))
        yield target
    finally:
        shutil.rmtree(folder, ignore_errors=True)

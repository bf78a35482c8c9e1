"""The output folder of a Ray run: what is done is a file, and a file is whole or absent.

    OUTPUT/interactions/<input key>.parquet            one per input file (adapted + rejects)
    OUTPUT/summaries/<backend key>/day=YYYY-MM-DD/part-<digest>.parquet
    OUTPUT/aggregates/<backend key>/shard-<digest>.parquet

Every file is written beside its final name and then moved into place, so a worker killed
mid-write leaves no half file, and a rerun redoes exactly the inputs, summaries and shards
whose files are missing. The folder may be local or an object-store URI (s3://, gs://, ...);
pyarrow's filesystems do the I/O either way, so every worker of a cluster can reach it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from tracewatch.monitor.rollup_store import digest


def filesystem(location: str) -> tuple[pafs.FileSystem, str]:
    """A pyarrow filesystem and the path inside it, for a local path or a URI."""
    if "://" in location:
        return pafs.FileSystem.from_uri(location)
    return pafs.LocalFileSystem(), str(Path(location).resolve())


@dataclass(frozen=True)
class Layout:
    """Where each stage keeps its files; picklable, so workers get it as an argument."""

    location: str

    @property
    def fs_root(self) -> tuple[pafs.FileSystem, str]:
        return filesystem(self.location)

    def interactions(self, input_key: str) -> str:
        return f"{self.fs_root[1]}/interactions/{input_key}.parquet"

    def summaries_dir(self, backend_key: str) -> str:
        return f"{self.fs_root[1]}/summaries/{backend_key}"

    def summary_part(self, backend_key: str, day: str, hashes: list[str]) -> str:
        return f"{self.summaries_dir(backend_key)}/day={day}/part-{digest(*sorted(hashes))}.parquet"

    def aggregates_dir(self, backend_key: str) -> str:
        return f"{self.fs_root[1]}/aggregates/{backend_key}"

    def aggregate_shard(self, backend_key: str, shard_digest: str) -> str:
        return f"{self.aggregates_dir(backend_key)}/shard-{shard_digest}.parquet"

    def exists(self, path: str) -> bool:
        fs, _ = self.fs_root
        return fs.get_file_info(path).type == pafs.FileType.File

    def write(self, path: str, table: pa.Table) -> None:
        """Write whole or not at all: to a hidden name beside `path`, then move it there."""
        fs, _ = self.fs_root
        parent, name = path.rsplit("/", 1)
        fs.create_dir(parent, recursive=True)
        tmp = f"{parent}/.{name}.{uuid.uuid4().hex[:8]}.tmp"
        pq.write_table(table, tmp, filesystem=fs)
        fs.move(tmp, path)

    def metadata(self, path: str, key: bytes) -> dict[str, Any]:
        """The JSON document a stage keeps in its file's schema metadata under `key`."""
        fs, _ = self.fs_root
        meta = pq.read_schema(path, filesystem=fs).metadata or {}
        return orjson.loads(meta.get(key, b"{}"))

    def read(self, path: str, columns: list[str] | None = None) -> pa.Table:
        fs, _ = self.fs_root
        return pq.read_table(path, columns=columns, filesystem=fs)

    def files_under(self, folder: str) -> list[str]:
        """Finished Parquet files below `folder` (hidden in-progress files left out)."""
        fs, _ = self.fs_root
        if fs.get_file_info(folder).type != pafs.FileType.Directory:
            return []
        infos = fs.get_file_info(pafs.FileSelector(folder, recursive=True))
        return sorted(
            i.path
            for i in infos
            if i.type == pafs.FileType.File
            and i.base_name.endswith(".parquet")
            and not i.base_name.startswith(".")
        )

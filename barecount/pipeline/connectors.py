"""Connectors turn a stream's source into a SQL relation the warehouse can read: Parquet and CSV files under the
profile's sources folder, read by the warehouse itself. The Dagster resource that hands one to a run is
`barecount.defs.resources.SourceFilesResource`."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from barecount.errors import TransientSourceError, UsageError
from barecount.specs.stream import PERIOD_PLACEHOLDER, StreamSpec
from barecount.sql.relation import PARTITION_COLUMN, Column, sql_literal

PARQUET_MAGIC = b"PAR1"
"""A Parquet file starts and ends with these bytes; a file without the closing ones is still being written."""

SOURCE_FILE = "__source_file"
SOURCE_ROW = "__source_row"


class SourceMissingError(UsageError):
    """A source file the run needs is not there."""


@dataclass(frozen=True)
class SourceFiles:
    """The folder file connectors read (the profile's `sources_dir`)."""

    root: str
    """Folder holding the source extracts, e.g. data/sources."""

    def files_for(self, stream: StreamSpec, partition_keys: Sequence[str] | None) -> list[Path]:
        """The files a stream reads for these periods (all must exist)."""
        template = stream.connector.path
        names = (
            [template] if partition_keys is None else [template.replace(PERIOD_PLACEHOLDER, k) for k in partition_keys]
        )
        files = [Path(self.root) / n for n in names]
        missing = [f for f in files if not f.is_file()]
        if missing:
            shown = ", ".join(str(f) for f in missing[:5]) + (
                f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            )
            raise SourceMissingError(
                f"stream {stream.name}: missing source file(s) {shown} "
                f"(connector.path '{template}'; make sample data with `barecount sample-data`)"
            )
        return files

    def describe(self, stream: StreamSpec, partition_keys: Sequence[str] | None) -> dict[str | None, list[Column]]:
        """Each extract's own schema as the warehouse reads it (file metadata and CSV headers, no rows).

        Read file by file, because a source can change shape from one period's extract to the next.
        """
        keys: list[str | None] = [None] if partition_keys is None else list(partition_keys)
        files = self.files_for(stream, partition_keys)
        schemas: dict[str | None, list[Column]] = {}
        with duckdb.connect() as conn:
            for key, file in zip(keys, files, strict=True):
                if stream.connector.kind == "parquet":
                    _check_delivered(file)
                rows = conn.execute(f"DESCRIBE SELECT * FROM {self._reader([file], stream.connector.kind)}").fetchall()
                schemas[key] = [Column(str(r[0]), str(r[1])) for r in rows]
        return schemas

    def delivered_sql(self, stream: StreamSpec, partition_keys: Sequence[str]) -> str:
        """Every extract of the stream on disk as delivered, for reconciling against the system of record.

        A partitioned stream reads the extracts of `partition_keys` that exist (late rows come in later
        extracts); columns are matched by name, so extracts of different shapes read together.
        """
        if not stream.partitioned:
            files = self.files_for(stream, None)
        else:
            template = stream.connector.path
            files = [Path(self.root) / template.replace(PERIOD_PLACEHOLDER, k) for k in partition_keys]
            files = [f for f in files if f.is_file()]
            if not files:
                raise SourceMissingError(f"stream {stream.name}: no extract on disk for any period ('{template}')")
        return f"SELECT * FROM {self._reader(files, stream.connector.kind, by_name=True)}"

    def _reader(
        self, files: Sequence[Path], kind: str = "parquet", provenance: bool = False, by_name: bool = False
    ) -> str:
        listed = "[" + ", ".join(sql_literal(str(f)) for f in files) + "]"
        if kind == "parquet":
            extra = ", filename = true, file_row_number = true" if provenance else ""
            extra += ", union_by_name = true" if by_name else ""
            return f"read_parquet({listed}{extra})"
        extra = (", filename = true" if provenance else "") + (", union_by_name = true" if by_name else "")
        return f"read_csv({listed}, header = true, all_varchar = true{extra})"

    def scan_sql(self, stream: StreamSpec, partition_keys: Sequence[str] | None) -> str:
        """A SELECT of the source columns as delivered, plus where each row came from.

        Partitioned streams get `fiscal_period` from each file's name. `__source_file` and
        `__source_row` give the delivery order (the first of two rows with one key is the one kept).
        CSV is read as text so that a value that does not parse survives to quarantine as it was.
        """
        files = self.files_for(stream, partition_keys)
        scan = self._reader(files, stream.connector.kind, provenance=True)
        row = "file_row_number" if stream.connector.kind == "parquet" else "row_number() OVER ()"
        extra = f"filename AS {SOURCE_FILE}, {row} AS {SOURCE_ROW}"
        if partition_keys is not None:
            prefix, suffix = stream.connector.path.split(PERIOD_PLACEHOLDER, 1)
            pattern = _regex_escape(prefix.rsplit("/", 1)[-1]) + "([^/]+)" + _regex_escape(suffix) + "$"
            extra += f", regexp_extract(filename, {sql_literal(pattern)}, 1) AS {PARTITION_COLUMN}"
        hidden = "filename, file_row_number" if stream.connector.kind == "parquet" else "filename"
        return f"SELECT * EXCLUDE ({hidden}), {extra} FROM {scan}"

    def fingerprints(
        self, stream: StreamSpec, partition_keys: Sequence[str] | None
    ) -> dict[str | None, list[dict[str, object]]]:
        """Each period's extract file as evidence: its path under the sources folder, size and SHA-256."""
        keys: list[str | None] = [None] if partition_keys is None else list(partition_keys)
        found: dict[str | None, list[dict[str, object]]] = {}
        for key, file in zip(keys, self.files_for(stream, partition_keys), strict=True):
            digest = hashlib.sha256()
            with file.open("rb") as handle:
                for block in iter(lambda h=handle: h.read(1 << 20), b""):
                    digest.update(block)
            relative = file.relative_to(self.root).as_posix() if file.is_relative_to(self.root) else str(file)
            found[key] = [{"path": relative, "bytes": file.stat().st_size, "sha256": digest.hexdigest()}]
        return found

    def extract_date(self, stream: StreamSpec) -> date:
        """The date an unpartitioned snapshot was extracted: its file's modification date (UTC)."""
        (file,) = self.files_for(stream, None)
        return datetime.fromtimestamp(file.stat().st_mtime, UTC).date()


def _check_delivered(file: Path) -> None:
    """A Parquet extract whose footer has not arrived is a delivery in progress (transient), not a bad file."""
    size = file.stat().st_size
    with file.open("rb") as handle:
        head = handle.read(len(PARQUET_MAGIC))
        handle.seek(max(size - len(PARQUET_MAGIC), 0))
        tail = handle.read(len(PARQUET_MAGIC))
    if head == PARQUET_MAGIC and tail != PARQUET_MAGIC:
        raise TransientSourceError(
            f"{file} is not completely delivered yet ({size:,} bytes, no Parquet footer): the extract is still "
            "being written"
        )


def _regex_escape(text: str) -> str:
    return "".join("\\" + ch if ch in ".^$*+?()[]{}|\\" else ch for ch in text)

"""The one way lakecore writes Parquet: feature-table data files, training data and spines.

The same rows give the same bytes: zstd, dictionary pages for text columns only (for numbers
they are mostly a failed attempt), row groups of at most ``ROW_GROUP_ROWS`` rows, chunks
combined first. Each file is hashed while it is written (no second read for its digest) and
fsynced before the call returns.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from lakecore.base.arrow import type_kind
from lakecore.base.files import create_exclusively, open_own, replace_file
from lakecore.base.hashing import ALGORITHM

ROW_GROUP_ROWS = 1 << 20
# Files up to this size are read into memory and parsed there: for the small files of a
# streaming pipeline, pyarrow's dataset reader costs several times the parse itself.
SMALL_FILE_BYTES = 1 << 22
# Linux names an open file's descriptor here: a big file is handed to pyarrow by the file
# opened without following links, not by its path (which could be swapped in between).
_OPEN_FILES = "/proc/self/fd"


class _HashingFile:
    """A binary file that hashes what is written through it."""

    def __init__(self, file):
        self._file, self._hash, self._position = file, hashlib.sha256(), 0

    def write(self, data) -> int:
        self._hash.update(data)
        self._position += len(data)
        return self._file.write(data)

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        self._file.flush()

    @property
    def closed(self) -> bool:
        return self._file.closed

    def digest(self) -> str:
        return f"{ALGORITHM}:{self._hash.hexdigest()}"


def write_parquet(table: pa.Table, path: str, *, replace: bool = False,
                  into: BinaryIO | None = None) -> tuple[int, str]:
    """Write ``table`` to ``path``; its ``(size in bytes, sha256 digest)``.

    The file is created exclusively (never through a link; an existing file is an error) and
    removed again if writing fails; with ``replace=True`` it is written beside ``path`` and
    renamed over it, so readers see the old file or the new one. ``into``: the empty file at
    ``path``, already open (``offline.ready_files``; its owner undoes a failed write). The caller makes the folder durable (one
    fsync for all the files of a commit or dataset).

    Examples
    --------
    >>> import os, tempfile, pyarrow as pa
    >>> path = os.path.join(tempfile.mkdtemp(), "rows.parquet")
    >>> size, digest = write_parquet(pa.table({"id": [1, 2]}), path)
    >>> size == os.path.getsize(path), digest.startswith("sha256:")
    (True, True)
    """
    text = [f.name for f in table.schema if type_kind(f.type) in ("string", "binary")]
    written: list[_HashingFile] = []

    def write(f) -> None:
        written.append(_HashingFile(f))
        options = dict(compression="zstd", use_dictionary=text, row_group_size=ROW_GROUP_ROWS)
        if table.nbytes <= SMALL_FILE_BYTES:    # encoded in memory, written in one call
            encoded = pa.BufferOutputStream()
            pq.write_table(table.combine_chunks(), encoded, **options)
            written[0].write(encoded.getvalue())
        else:
            pq.write_table(table.combine_chunks(), written[0], **options)

    if replace:
        replace_file(path, write)
    else:
        try:
            with into if into is not None else create_exclusively(path) as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            if written and into is None:    # ours: created, then failed part way
                with contextlib.suppress(OSError):
                    os.unlink(path)
            raise
    return written[0].tell(), written[0].digest()


def read_parquet(path: str, columns: list[str] | None = None, *,
                 use_threads: bool = True) -> pa.Table:
    """The rows of a Parquet file in the lake (of ``columns`` only, when given: the ones the
    file has, since a file written before a column was added lacks it), never read through a
    link (a link at ``path`` is an IntegrityError).

    Examples
    --------
    >>> import os, tempfile, pyarrow as pa
    >>> path = os.path.join(tempfile.mkdtemp(), "rows.parquet")
    >>> _ = write_parquet(pa.table({"id": [1, 2], "x": [0.5, 1.5]}), path)
    >>> read_parquet(path, ["x", "added_later"]).column_names
    ['x']
    """
    with open_own(path) as f:
        size = os.fstat(f.fileno()).st_size
        if size <= SMALL_FILE_BYTES:
            parquet = pq.ParquetFile(pa.BufferReader(f.read()))
            return parquet.read(columns=_present(parquet, columns), use_threads=False)
        opened = os.path.join(_OPEN_FILES, str(f.fileno()))
        source = opened if os.path.isdir(_OPEN_FILES) else path
        return pq.read_table(source, columns=_present(pq.ParquetFile(source), columns),
                             use_threads=use_threads)


def _present(parquet: pq.ParquetFile, columns: list[str] | None) -> list[str] | None:
    if columns is None:
        return None
    names = set(parquet.schema_arrow.names)
    return [c for c in columns if c in names]

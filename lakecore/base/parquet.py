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

import pyarrow as pa
import pyarrow.parquet as pq

from lakecore.base.arrow import type_kind
from lakecore.base.files import create_exclusively, replace_file
from lakecore.base.hashing import ALGORITHM

ROW_GROUP_ROWS = 1 << 20


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


def write_parquet(table: pa.Table, path: str, *, replace: bool = False) -> tuple[int, str]:
    """Write ``table`` to ``path``; its ``(size in bytes, sha256 digest)``.

    The file is created exclusively (never through a link; an existing file is an error) and
    removed again if writing fails; with ``replace=True`` it is written beside ``path`` and
    renamed over it, so readers see the old file or the new one. The caller makes the folder
    durable (one fsync for all the files of a commit or dataset).

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
        pq.write_table(table.combine_chunks(), written[0], compression="zstd",
                       use_dictionary=text, row_group_size=ROW_GROUP_ROWS)

    if replace:
        replace_file(path, write)
    else:
        try:
            with create_exclusively(path) as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            if written:                 # ours: created, then failed part way
                with contextlib.suppress(OSError):
                    os.unlink(path)
            raise
    return written[0].tell(), written[0].digest()

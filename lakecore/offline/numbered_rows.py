"""Rows of several data files numbered one after the other (the first file's rows first), as
a streamed insert and the expectations judged on its files refer to them; read back by
number, each file read once per call and only the columns asked for."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from lakecore.base.parquet import read_parquet
from lakecore.offline.evolution import fit


class NumberedRows:
    """The rows of the data files ``paths`` (relative to ``location``), holding ``counts``
    rows each, in ``schema``."""

    def __init__(self, location: str, paths: list[str], counts: list[int], schema: pa.Schema):
        self.paths = [os.path.join(location, p) for p in paths]
        self.starts = np.concatenate(([0], np.cumsum(counts, dtype=np.int64)))
        self.schema = schema

    def by_file(self, rows: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        """``(file index, row positions in that file)`` of row numbers ``rows`` (ascending),
        for each file holding any."""
        owner = np.searchsorted(self.starts, rows, "right") - 1
        for index in np.unique(owner):
            yield int(index), rows[owner == index] - self.starts[index]

    def fetch(self, rows: np.ndarray, columns: list[str]) -> pa.Table:
        """``columns`` of the rows numbered ``rows`` (ascending), in that order."""
        target = pa.schema([self.schema.field(c) for c in columns])
        parts = [fit(read_parquet(self.paths[index], columns), target).take(pa.array(local))
                 for index, local in self.by_file(rows)]
        return pa.concat_tables(parts) if parts else target.empty_table()

"""Row-key hashes of more rows than should be held in memory, for finding repeated keys.

A streamed insert (and the ``unique`` expectation judged over it) must find the rows whose
key appears more than once, across more rows than memory holds. ``KeyHashes`` keeps, for each
row added, its 64-bit key hash and its number in the stream, split by the hash's top bits into
``BUCKETS`` buckets: in memory up to ``budget_rows``, then appended to one file per bucket in a
folder of its own. Equal keys hash equal, so every repeat of a key lands in one bucket, and a
bucket (a ``1/BUCKETS`` share of the rows) is all that is ever sorted or held at once.

Hashes only say which rows *may* share a key: callers compare those rows' actual keys.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import numpy as np

from lakecore.base.files import open_own
from lakecore.base.keys import sharing_a_value

BUCKETS = 64
_SHIFT = np.uint64(58)                  # the top 6 bits name the bucket
DEFAULT_BUDGET_ROWS = 1 << 20           # 16 MB of (hash, row) pairs before spilling
_PAIR = np.dtype([("hash", "<u8"), ("row", "<i8")])


class KeyHashes:
    """(hash, row number) pairs, bucketed by hash; spilled under ``folder`` when large.

    ``add`` them in any order; then ``repeated()`` and ``matches()`` read them bucket by
    bucket. ``close()`` removes the spill folder (also on errors: use it as a context
    manager).
    """

    def __init__(self, folder: str, budget_rows: int | None = None):
        self._parent = folder
        self._budget = max(int(DEFAULT_BUDGET_ROWS if budget_rows is None else budget_rows), 1)
        self._held: list[np.ndarray] = []     # pair arrays not yet spilled
        self._held_rows = 0
        self._spill: str | None = None        # the folder of bucket files, once spilled
        self._sorted: dict[int, np.ndarray] = {}
        self.rows = 0

    def __enter__(self) -> KeyHashes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def spilled(self) -> bool:
        return self._spill is not None

    def add(self, hashes: np.ndarray, first_row: int, rows: np.ndarray | None = None) -> None:
        """The hashes of rows ``first_row, first_row + 1, ...`` (or of the rows numbered
        ``rows``, ascending)."""
        pairs = np.empty(len(hashes), _PAIR)
        pairs["hash"] = hashes
        pairs["row"] = (np.arange(first_row, first_row + len(hashes), dtype=np.int64)
                        if rows is None else rows)
        if self._sorted:
            raise RuntimeError("KeyHashes: add() after the hashes were read")
        self._held.append(pairs)
        self._held_rows += len(pairs)
        self.rows += len(pairs)
        if self._held_rows > self._budget:
            self._write_out()

    def _write_out(self) -> None:
        """Append the held pairs to their bucket files."""
        if self._spill is None:
            # a hidden temporary folder in the caller's folder (never the system's temporary
            # folder, which may be memory); vacuum removes one left by a killed process
            self._spill = tempfile.mkdtemp(prefix=".spill-", suffix=".tmp", dir=self._parent)
        pairs = np.concatenate(self._held)
        self._held, self._held_rows = [], 0
        buckets = (pairs["hash"] >> _SHIFT).astype(np.uint8)
        order = np.argsort(buckets, kind="stable")        # a radix sort for bytes
        bounds = np.searchsorted(buckets[order], np.arange(BUCKETS + 1))
        pairs = pairs[order]
        for bucket in np.flatnonzero(np.diff(bounds)):
            with open_own(self._bucket_path(int(bucket)), "ab") as f:
                f.write(memoryview(pairs[bounds[bucket]:bounds[bucket + 1]]).cast("B"))

    def _bucket_path(self, bucket: int) -> str:
        assert self._spill is not None
        return os.path.join(self._spill, f"{bucket:03d}.pairs")

    def _bucket(self, bucket: int) -> np.ndarray:
        """The pairs of one bucket, sorted by hash. Reading starts by sorting every bucket
        once (a spilled one in its file): no ``add`` after that. A spilled bucket is read
        into memory of its own each time (never mapped: mapped pages of a file count in the
        process's resident memory)."""
        if not self._sorted:
            self._sort_buckets()
        if self._spill is None:
            return self._sorted[bucket]
        return _read_pairs(self._bucket_path(bucket))

    def _sort_buckets(self) -> None:
        if self._spill is None:     # in memory: sort everything once, split by bucket
            pairs = np.concatenate(self._held) if self._held else np.empty(0, _PAIR)
            pairs = _by_hash(pairs)
            bounds = np.searchsorted(pairs["hash"] >> _SHIFT,
                                     np.arange(BUCKETS + 1, dtype=np.uint64))
            self._sorted = {b: pairs[bounds[b]:bounds[b + 1]] for b in range(BUCKETS)}
            return
        if self._held:
            self._write_out()
        for bucket in range(BUCKETS):
            path = self._bucket_path(bucket)
            if os.path.lexists(path):
                pairs = _by_hash(_read_pairs(path))
                with open_own(path, "rb+") as f:
                    f.write(memoryview(pairs).cast("B"))
        self._sorted = {-1: np.empty(0, _PAIR)}     # marks the buckets sorted

    def repeated(self, batch_rows: int | None = None) -> Iterator[np.ndarray]:
        """Row numbers (ascending) of the rows whose hash some other row shares, in batches
        of whole buckets (so all rows of a key are in one batch) of about ``batch_rows``."""
        limit = self._budget if batch_rows is None else batch_rows
        found: list[np.ndarray] = []
        count = 0
        for bucket in range(BUCKETS):
            pairs = self._bucket(bucket)
            if len(pairs) < 2:
                continue
            shared = sharing_a_value(pairs["hash"])
            if not shared.any():
                continue
            found.append(pairs["row"][shared])
            count += int(shared.sum())
            if count >= limit:
                yield np.sort(np.concatenate(found))
                found, count = [], 0
        if found:
            yield np.sort(np.concatenate(found))

    def matches(self, other: KeyHashes, batch_rows: int | None = None
                ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(rows here, rows in other)``, each ascending: the rows whose hash the other
        side has too, in batches of whole buckets of about ``batch_rows`` rows."""
        limit = self._budget if batch_rows is None else batch_rows
        mine: list[np.ndarray] = []
        theirs: list[np.ndarray] = []
        count = 0
        if not self.rows or not other.rows:
            return
        for bucket in range(BUCKETS):
            a, b = self._bucket(bucket), other._bucket(bucket)
            if not len(a) or not len(b):
                continue
            ha, hb = a["hash"], b["hash"]
            in_b = _present(ha, hb)
            if not in_b.any():
                continue
            mine.append(a["row"][in_b])
            theirs.append(b["row"][_present(hb, ha)])
            count += len(mine[-1]) + len(theirs[-1])
            if count >= limit:
                yield np.sort(np.concatenate(mine)), np.sort(np.concatenate(theirs))
                mine, theirs, count = [], [], 0
        if mine:
            yield np.sort(np.concatenate(mine)), np.sort(np.concatenate(theirs))

    def close(self) -> None:
        self._held, self._sorted = [], {}
        if self._spill is not None:
            shutil.rmtree(self._spill, ignore_errors=True)
            self._spill = None


def _read_pairs(path: str) -> np.ndarray:
    """A bucket file's pairs (none when it does not exist; never read through a link; a
    trailing partial pair is ignored)."""
    if not os.path.lexists(path):
        return np.empty(0, _PAIR)
    with open_own(path) as f:
        data = f.read()
    return np.frombuffer(data, _PAIR, len(data) // _PAIR.itemsize).copy()


def _by_hash(pairs: np.ndarray) -> np.ndarray:
    """Pairs sorted by hash (rows of one hash in any order: callers sort what they pick;
    a structured sort by both fields is many times slower)."""
    return pairs[np.argsort(pairs["hash"])]


def _present(values: np.ndarray, ordered: np.ndarray) -> np.ndarray:
    """Which of ``values`` appear in the sorted ``ordered`` (a boolean mask)."""
    at = np.minimum(np.searchsorted(ordered, values), len(ordered) - 1)
    return ordered[at] == values

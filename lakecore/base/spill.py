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

BUCKETS = 256
_SHIFT = np.uint64(56)                  # the top 8 bits name the bucket
DEFAULT_BUDGET_ROWS = 1 << 22           # 64 MB of (hash, row) pairs before spilling
_PAIR = np.dtype([("hash", "<u8"), ("row", "<i8")])


class KeyHashes:
    """(hash, row number) pairs, bucketed by hash; spilled under ``folder`` when large.

    ``add`` them in any order; then ``repeated()`` and ``rows_with()`` read them bucket by
    bucket. ``close()`` removes the spill folder (also on errors: use it as a context
    manager).
    """

    def __init__(self, folder: str, budget_rows: int = DEFAULT_BUDGET_ROWS):
        self._parent = folder
        self._budget = max(int(budget_rows), 1)
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
            with open(self._bucket_path(int(bucket)), "ab") as f:
                f.write(memoryview(pairs[bounds[bucket]:bounds[bucket + 1]]).cast("B"))

    def _bucket_path(self, bucket: int) -> str:
        assert self._spill is not None
        return os.path.join(self._spill, f"{bucket:03d}.pairs")

    def _bucket(self, bucket: int) -> np.ndarray:
        """The pairs of one bucket, sorted by hash. Reading starts by sorting every
        bucket once (a spilled one in its file, then mapped): no ``add`` after that."""
        if not self._sorted:
            self._sort_buckets()
        return self._sorted[bucket]

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
            if not os.path.exists(path):
                self._sorted[bucket] = np.empty(0, _PAIR)
                continue
            pairs = _by_hash(np.fromfile(path, _PAIR))
            pairs.tofile(path)
            del pairs
            self._sorted[bucket] = np.memmap(path, _PAIR, "r")

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
            h = pairs["hash"]
            same = h[1:] == h[:-1]
            if not same.any():
                continue
            shared = np.zeros(len(h), bool)
            shared[1:] |= same
            shared[:-1] |= same
            found.append(pairs["row"][shared])
            count += int(shared.sum())
            if count >= limit:
                yield np.sort(np.concatenate(found))
                found, count = [], 0
        if found:
            yield np.sort(np.concatenate(found))

    def rows_with(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which of ``hashes`` some added row has (a boolean mask over ``hashes``), and the
        row numbers (ascending) of the added rows having any of them."""
        present = np.zeros(len(hashes), bool)
        if not len(hashes) or not self.rows:
            return present, np.empty(0, np.int64)
        order = np.argsort(hashes)
        ordered = hashes[order]
        bounds = np.searchsorted(ordered >> _SHIFT, np.arange(BUCKETS + 1, dtype=np.uint64))
        rows = []
        for bucket in np.flatnonzero(np.diff(bounds)):
            lo, hi = bounds[bucket], bounds[bucket + 1]
            pairs = self._bucket(int(bucket))
            if not len(pairs):
                continue
            stored = pairs["hash"]
            probe = ordered[lo:hi]
            at = np.searchsorted(stored, probe)
            hit = stored[np.minimum(at, len(stored) - 1)] == probe
            present[order[lo:hi][hit]] = True
            if hit.any():
                wanted = np.unique(probe[hit])
                first = np.searchsorted(stored, wanted, "left")
                last = np.searchsorted(stored, wanted, "right")
                rows.append(np.asarray(pairs["row"])[_spans(first, last)])
        matched = np.sort(np.concatenate(rows)) if rows else np.empty(0, np.int64)
        return present, matched

    def close(self) -> None:
        self._held, self._sorted = [], {}
        if self._spill is not None:
            shutil.rmtree(self._spill, ignore_errors=True)
            self._spill = None


def _by_hash(pairs: np.ndarray) -> np.ndarray:
    """Pairs sorted by hash (rows of one hash in any order: callers sort what they pick;
    a structured sort by both fields is many times slower)."""
    return pairs[np.argsort(pairs["hash"])]


def _spans(first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """The positions ``first[i] .. last[i] - 1`` of every span, concatenated."""
    lengths = last - first
    total = int(lengths.sum())
    starts = np.repeat(first - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
    return starts + np.arange(total, dtype=np.int64)

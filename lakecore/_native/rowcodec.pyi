from collections.abc import Callable
from enum import IntEnum

import numpy as np
import numpy.typing as npt

class Kind(IntEnum):
    FIXED = 0
    BOOL = 1
    BYTES = 2
    LIST_FIXED = 3
    LIST_BOOL = 4
    LIST_BYTES = 5

class KeyStatus(IntEnum):
    KEY_COUNT = 1
    KEY_NULL = 2
    KEY_TOO_LONG = 3
    KEY_NOT_BYTES = 4
    KEY_NOT_INTEGER = 5

class KeyRefused(ValueError):
    status: int
    column: int
    row: int
    detail: object
    def __init__(self, status: int, column: int, row: int, detail: object) -> None: ...

class Scalar(IntEnum):
    INTEGER = 0
    FLOAT = 1
    BOOLEAN = 2
    STRING = 3
    BINARY = 4

class RowLayout:
    n_columns: int
    n_keys: int
    bitmap_bytes: int
    fixed_bytes: int
    time_position: int
    def __init__(self, kinds: list[int], widths: list[int], scalars: list[int],
                 time_position: int, key_kinds: list[int], key_widths: list[int]) -> None: ...
    def key_kinds_of(self, k: int) -> int: ...

def encode_key(layout: RowLayout, values: tuple) -> bytes: ...
def encode_keys(layout: RowLayout, columns: list[tuple], n: int) -> list[bytes]: ...
def encode_values(layout: RowLayout, times: npt.NDArray[np.int64], version: int,
                  columns: list[list[npt.NDArray]], num_threads: int = 1) -> list[bytes]: ...
def newer_rows(values: list[bytes], stored: list[bytes | None]) -> npt.NDArray[np.uint8]: ...
def decode_batch(layout: RowLayout, keys: list[bytes], values: list[object | None],
                 min_time: int, allocate: Callable[[int], npt.NDArray[np.uint8]]) -> int: ...
def decode_row(layout: RowLayout, value: object | None, min_time: int) -> list | None: ...

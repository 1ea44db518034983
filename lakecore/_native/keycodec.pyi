from enum import IntEnum

import numpy as np
import numpy.typing as npt

from lakecore._native.rowformat import RowLayout

class KeyStatus(IntEnum):
    KEY_COUNT = 1
    KEY_NULL = 2
    KEY_TOO_LONG = 3
    KEY_NOT_BYTES = 4
    KEY_NOT_INTEGER = 5
    KEY_OUT_OF_RANGE = 6

class KeyRefused(ValueError):
    status: int
    column: int
    row: int
    detail: object
    def __init__(self, status: int, column: int, row: int, detail: object) -> None: ...

def encode_key(layout: RowLayout, values: tuple) -> bytes: ...
def encode_keys(layout: RowLayout, columns: list[tuple], n: int) -> list[bytes]: ...
def encode_keys_packed(layout: RowLayout, columns: list[tuple],
                       n: int) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]: ...
def split_keys(data: npt.NDArray[np.uint8], offsets: npt.NDArray[np.int64]) -> list[bytes]: ...

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from lakecore._native.rowformat import RowLayout

def encode_values(layout: RowLayout, times: npt.NDArray[np.int64], version: int,
                  columns: list[list[npt.NDArray]], num_threads: int = 1) -> list[bytes]: ...
def encode_packed(layout: RowLayout, times: npt.NDArray[np.int64], version: int,
                  columns: list[list[npt.NDArray]], allocate: Callable[[int], npt.NDArray[np.uint8]],
                  num_threads: int = 1) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]: ...
def newer_rows(values: list[bytes], stored: list[bytes | None]) -> npt.NDArray[np.uint8]: ...
def decode_row(layout: RowLayout, value: object | None, min_time: int) -> list | None: ...

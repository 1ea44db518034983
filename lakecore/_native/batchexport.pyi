from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from lakecore._native.rowformat import RowLayout

def decode_batch(layout: RowLayout, keys: list[bytes], values: list[object | None],
                 min_time: int, allocate: Callable[[int], npt.NDArray[np.uint8]]) -> int: ...

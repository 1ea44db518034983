import numpy as np
import numpy.typing as npt

class RowLayout:
    n_fixed: int
    n_var: int
    bitmap_bytes: int
    fixed_bytes: int
    def __init__(self, widths: list[int], n_var: int) -> None: ...

def encode_keys(
    int_columns: list[npt.NDArray[np.int64]],
    bytes_columns: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.uint8]]],
    order: list[tuple[bool, int]],
    n: int,
) -> list[bytes]: ...
def encode_values(
    layout: RowLayout,
    times: npt.NDArray[np.int64],
    version: int,
    fixed_values: list[npt.NDArray[np.uint8]],
    fixed_valid: list[npt.NDArray[np.uint8]],
    var_offsets: list[npt.NDArray[np.int64]],
    var_data: list[npt.NDArray[np.uint8]],
    var_valid: list[npt.NDArray[np.uint8]],
) -> list[bytes]: ...
def decode_values(layout: RowLayout, values: list[object | None]) -> tuple: ...

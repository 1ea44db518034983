from enum import IntEnum

import numpy as np
import numpy.typing as npt

class Direction(IntEnum):
    BACKWARD = 0
    FORWARD = 1
    NEAREST = 2

def has_openmp() -> bool: ...
def asof_indices(
    left_codes: npt.NDArray[np.int32] | npt.NDArray[np.int64],
    left_times: npt.NDArray[np.int64] | npt.NDArray[np.float64],
    right_codes: npt.NDArray[np.int32] | npt.NDArray[np.int64],
    right_times: npt.NDArray[np.int64] | npt.NDArray[np.float64],
    n_codes: int,
    direction: int = 0,
    strict: bool = False,
    has_tolerance: bool = False,
    tolerance: float = 0,
    num_threads: int = 1,
    partition_rows: int = ...,
    pass_rows: int = ...,
    overwrite_left_codes: bool = False,
) -> npt.NDArray[np.int32] | npt.NDArray[np.int64]: ...

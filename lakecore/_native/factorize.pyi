import numpy as np
import numpy.typing as npt

def factorize_int64(
    left: npt.NDArray[np.int64],
    left_valid: npt.NDArray[np.uint8],
    right: npt.NDArray[np.int64],
    right_valid: npt.NDArray[np.uint8],
    num_threads: int = 1,
    code_dtype: npt.DTypeLike = ...,
) -> tuple[npt.NDArray[np.int32 | np.int64], npt.NDArray[np.int32 | np.int64], int]: ...
def factorize_bytes(
    left_offsets: npt.NDArray[np.int64],
    left_data: npt.NDArray[np.uint8],
    left_valid: npt.NDArray[np.uint8],
    right_offsets: npt.NDArray[np.int64],
    right_data: npt.NDArray[np.uint8],
    right_valid: npt.NDArray[np.uint8],
    code_dtype: npt.DTypeLike = ...,
) -> tuple[npt.NDArray[np.int32 | np.int64], npt.NDArray[np.int32 | np.int64], int]: ...
def combine_codes(
    major: npt.NDArray[np.int64], minor: npt.NDArray[np.int64], n_minor: int
) -> npt.NDArray[np.int64]: ...

import numpy as np
import numpy.typing as npt

def last_occurrences(codes: npt.NDArray[np.int64], n_codes: int) -> npt.NDArray[np.int64]: ...
def isin(
    codes: npt.NDArray[np.int64], other: npt.NDArray[np.int64], n_codes: int
) -> npt.NDArray[np.bool_]: ...

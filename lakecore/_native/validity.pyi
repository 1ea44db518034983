import numpy as np
import numpy.typing as npt

def index_validity(
    indices: npt.NDArray[np.int32] | npt.NDArray[np.int64], num_threads: int = 1
) -> tuple[npt.NDArray[np.uint8] | None, int]: ...

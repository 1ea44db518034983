import numpy as np
import numpy.typing as npt

class LmdbFunctions:
    def __init__(self, dbi_open: int, cursor_open: int, cursor_put: int, cursor_close: int,
                 get: int) -> None: ...

def put_rows(lib: LmdbFunctions, txn: int, db_name: bytes, keys: npt.NDArray[np.uint8],
             key_offsets: npt.NDArray[np.int64], data: npt.NDArray[np.uint8],
             offsets: npt.NDArray[np.int64], append: bool) -> tuple[int, int, int]: ...

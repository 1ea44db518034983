from enum import IntEnum

class Kind(IntEnum):
    FIXED = 0
    BOOL = 1
    BYTES = 2
    LIST_FIXED = 3
    LIST_BOOL = 4
    LIST_BYTES = 5

class Scalar(IntEnum):
    INTEGER = 0
    FLOAT = 1
    BOOLEAN = 2
    STRING = 3
    BINARY = 4

class ValueStatus(IntEnum):
    VALUE_TOO_LARGE = 1
    VALUE_MALFORMED = 2

class ValueRefused(ValueError):
    status: int
    column: int
    row: int
    detail: object
    def __init__(self, status: int, column: int, row: int, detail: object) -> None: ...

class RowLayout:
    n_columns: int
    n_keys: int
    bitmap_bytes: int
    fixed_bytes: int
    time_position: int
    def __init__(self, kinds: list[int], widths: list[int], scalars: list[int],
                 time_position: int, key_kinds: list[int], key_widths: list[int]) -> None: ...
    def key_kind(self, k: int) -> int: ...

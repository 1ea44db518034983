"""The exceptions lakecore raises.

Each inherits ``LakeError`` and the built-in exception a Python user would expect, so
``except KeyError`` catches a missing feature group and ``except TypeError`` a schema mismatch.
"""

__all__ = [
    "AlreadyExistsError",
    "ConflictError",
    "IntegrityError",
    "LakeError",
    "NotFoundError",
    "ReadOnlyError",
    "SchemaError",
    "StorageError",
    "ValidationError",
]


class LakeError(Exception):
    """Base class of every error lakecore raises on purpose."""


class NotFoundError(LakeError, KeyError):
    """A lake, feature group, view, training dataset or model that does not exist."""

    def __str__(self) -> str:
        # KeyError quotes its message; show it as written instead.
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


class AlreadyExistsError(LakeError, FileExistsError):
    """Creating something whose name and version are taken."""


class SchemaError(LakeError, TypeError):
    """A schema mismatch, an unknown column or a value of the wrong type."""


class ValidationError(LakeError, ValueError):
    """Bad values: a null primary key or event time, a failed expectation, a bad argument."""


class ConflictError(LakeError, RuntimeError):
    """Another engine committed to the same table in between (lakecore never builds on a
    commit it did not record)."""


class IntegrityError(LakeError, ValueError):
    """Stored content does not match its recorded hash."""


class ReadOnlyError(LakeError, PermissionError):
    """A change was attempted on a lake opened with ``readonly=True``."""


class StorageError(LakeError, OSError):
    """The operating system refused a read or a write (disk full, permissions, an I/O error);
    the message names the path, ``errno`` and ``filename`` are those of the refusal."""

    def __str__(self) -> str:
        # OSError formats errno and filename itself; the message already says both.
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()

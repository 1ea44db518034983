"""Names, versions and refs: how the lake names its objects, in one place.

Refs: ``fg:NAME@VERSION`` (a feature group), ``fg:NAME@VERSION#COMMIT`` (one commit of its
table), ``fv:NAME@VERSION`` (a feature view), ``td:NAME@VERSION/TD_VERSION`` (a training
dataset of that view) and ``model:NAME@VERSION``. Names are 1-128 ASCII letters, digits,
``_``, ``-`` and ``.`` (not first); versions are 1 to 2**31-1.
"""

from __future__ import annotations

import os
import re
from typing import Any

from lakecore.errors import ValidationError

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_REF = re.compile(r"(fg|fv|td|model):([^@/#]+)@([0-9]+)(?:#([0-9]+)|/([0-9]+))?")
MAX_VERSION = 2**31 - 1


def check_name(name: Any, what: str) -> str:
    """``name`` if it is a valid name, else ``ValidationError`` naming ``what``."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValidationError(
            f"{what}: expected a name of letters, digits, '_', '.' or '-' (at most 128 "
            f"characters, not starting with '.' or '-'), got {name!r}"
        )
    return name


def check_version(version: Any, what: str = "version") -> int:
    """``version`` if it is an integer from 1 to 2**31-1, else ``ValidationError``."""
    if isinstance(version, bool) or not isinstance(version, int) or not \
            1 <= version <= MAX_VERSION:
        raise ValidationError(f"{what}: expected an integer from 1 to {MAX_VERSION}, "
                              f"got {version!r}")
    return version


def group_folder(name: str, version: int) -> str:
    """Where a feature group's Delta table lives, relative to the lake: always derived from
    its name and version, never read from a file (a stored path could point anywhere)."""
    return os.path.join("feature_groups", check_name(name, "name"), f"v{check_version(version)}")


def group_ref(name: str, version: int, commit: int | None = None) -> str:
    return f"fg:{name}@{version}" + ("" if commit is None else f"#{commit}")


def view_ref(name: str, version: int) -> str:
    return f"fv:{name}@{version}"


def dataset_ref(view: str, view_version: int, version: int) -> str:
    return f"td:{view}@{view_version}/{version}"


def model_ref(name: str, version: int) -> str:
    return f"model:{name}@{version}"


def parse_ref(ref: str) -> tuple[str, str, int, int | None]:
    """``(kind, name, version, commit or dataset version)`` of a ref string."""
    match = _REF.fullmatch(ref) if isinstance(ref, str) else None
    if match is None:
        raise ValidationError(f"ref: expected fg:NAME@V, fg:NAME@V#COMMIT, fv:NAME@V, "
                              f"td:NAME@V/TD or model:NAME@V, got {ref!r}")
    kind, name, version, commit, td = match.groups()
    if (commit is not None and kind != "fg") or (td is not None and kind != "td") or \
            (kind == "td" and td is None):
        raise ValidationError(f"ref: {ref!r} is not a valid {kind} ref")
    if not _NAME.fullmatch(name):
        raise ValidationError(f"ref: {ref!r} does not hold a valid name")
    extra = commit if commit is not None else td
    return kind, name, int(version), None if extra is None else int(extra)

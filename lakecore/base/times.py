"""Epoch arithmetic in one place: instants as integer microseconds or milliseconds since
1970-01-01 UTC, and back. Naive datetimes are UTC, and dates are their midnight, UTC."""

from __future__ import annotations

import datetime as dt
import time

from lakecore.errors import ValidationError

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
EPOCH_DATE = dt.date(1970, 1, 1)
_MICROSECOND = dt.timedelta(microseconds=1)
_MILLISECOND = dt.timedelta(milliseconds=1)


def utc_micros(value: dt.datetime | dt.date | None, argument: str) -> int | None:
    """``value`` as microseconds since the epoch (None stays None); ``ValidationError``
    naming ``argument`` for anything but a datetime or a date."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return (value - EPOCH) // _MICROSECOND
    if isinstance(value, dt.date):
        return utc_micros(dt.datetime(value.year, value.month, value.day), argument)
    raise ValidationError(f"{argument}: expected a datetime or None, got {value!r}")


def utc_millis(value: dt.datetime) -> int:
    """An aware datetime as milliseconds since the epoch (rounded down)."""
    return (value - EPOCH) // _MILLISECOND


def from_micros(us: int | None) -> dt.datetime | None:
    """Microseconds since the epoch as an aware UTC datetime (None stays None)."""
    return None if us is None else EPOCH + dt.timedelta(microseconds=us)


def from_millis(ms: int) -> dt.datetime:
    """Milliseconds since the epoch as an aware UTC datetime."""
    return EPOCH + dt.timedelta(milliseconds=ms)


def micros(delta: dt.timedelta) -> int:
    """A duration in whole microseconds."""
    return delta // _MICROSECOND


def now_micros() -> int:
    return time.time_ns() // 1_000


def now_millis() -> int:
    return time.time_ns() // 1_000_000

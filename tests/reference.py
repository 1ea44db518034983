"""Obviously-correct, slow reference implementations the kernels are checked against."""

from __future__ import annotations


def asof_reference(
    left: list[tuple[object, object]],
    right: list[tuple[object, object]],
    direction: str = "backward",
    tolerance: object = None,
    strict: bool = False,
) -> list[int | None]:
    """For each left ``(key, time)`` the index of the matching right ``(key, time)`` or None.

    A key or time of None (or NaN) never matches. Times are numbers (ints or floats);
    ``tolerance`` is a number or None. Of right rows with equal key and time, the backward
    candidate is the one that comes last in ``right`` and the forward candidate the one that
    comes first (as pandas ``merge_asof`` does); nearest takes the candidate of the closer side,
    the backward one on a tie (so an exact match, when allowed, is the last of its run).
    """

    def usable(key: object, time: object) -> bool:
        return key is not None and time is not None and time == time  # NaN != NaN

    def distance(later, earlier):  # exact for ints; equal infinities are 0 apart
        return 0 if later == earlier else later - earlier

    result: list[int | None] = []
    for key, t in left:
        if not usable(key, t):
            result.append(None)
            continue
        before = after = None
        for j, (rkey, rt) in enumerate(right):
            if not usable(rkey, rt) or rkey != key:
                continue
            if (rt < t) or (rt == t and not strict):
                if tolerance is None or distance(t, rt) <= tolerance:
                    if before is None or rt >= right[before][1]:  # the last of equal times
                        before = j
            if (rt > t) or (rt == t and not strict):
                if tolerance is None or distance(rt, t) <= tolerance:
                    if after is None or rt < right[after][1]:  # the first of equal times
                        after = j
        if direction == "backward":
            result.append(before)
        elif direction == "forward":
            result.append(after)
        elif before is None or after is None:
            result.append(before if after is None else after)
        else:
            closer_back = distance(t, right[before][1]) <= distance(right[after][1], t)
            result.append(before if closer_back else after)
    return result


def last_occurrences(codes: list[int]) -> list[int]:
    """Positions of the rows to keep when deduplicating: the last row of each code, and every
    row whose code is negative (a null key, never a duplicate), in row order."""
    last = {c: i for i, c in enumerate(codes) if c >= 0}
    return [i for i, c in enumerate(codes) if c < 0 or last[c] == i]


def isin(codes: list[int], other: list[int]) -> list[bool]:
    """Whether each code occurs in ``other`` (negative codes never do)."""
    present = set(other)
    return [c >= 0 and c in present for c in codes]


def factorize(left: list[object], right: list[object]) -> tuple[list[int], list[int], int]:
    """Dense codes shared by two sides: equal values get equal codes, numbered in order of first
    appearance (left, then right); None gets -1."""
    codes: dict[object, int] = {}

    def code(v: object) -> int:
        return -1 if v is None else codes.setdefault(v, len(codes))
    left_codes = [code(v) for v in left]
    right_codes = [code(v) for v in right]
    return left_codes, right_codes, len(codes)


def combine_codes(major: list[int], minor: list[int], n_minor: int) -> list[int]:
    """Codes of column pairs: ``major * n_minor + minor``, or -1 where either is -1."""
    return [-1 if a < 0 or b < 0 else a * n_minor + b for a, b in zip(major, minor)]


def in_first_appearance_order(codes: list[int]) -> list[int]:
    """Codes renumbered in order of first appearance (-1 kept): two codings of the same values
    are the same partition exactly when this makes them equal."""
    renumbered: dict[int, int] = {}
    return [-1 if c < 0 else renumbered.setdefault(c, len(renumbered)) for c in codes]

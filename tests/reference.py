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

    A key or time of None never matches. Times are numbers (ints or floats); ``tolerance`` is
    a number or None. Of right rows with equal key and time, the last one wins.
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
                    if before is None or rt >= right[before][1]:
                        before = j
            if (rt > t) or (rt == t and not strict):
                if tolerance is None or distance(rt, t) <= tolerance:
                    if after is None or rt < right[after][1] or rt == right[after][1]:
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

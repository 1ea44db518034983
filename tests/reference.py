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

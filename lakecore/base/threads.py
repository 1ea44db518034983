"""How many threads the native kernels may use (default: every core, or LAKECORE_NUM_THREADS)."""

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from lakecore.errors import ValidationError

T = TypeVar("T")

_num_threads: int | None = None
_forked = False


def _after_fork_in_child() -> None:
    # OpenMP (GNU libgomp) cannot run a parallel region in a child forked from a process that
    # already ran one: the child would wait forever for the parent's worker threads.
    global _forked
    _forked = True


os.register_at_fork(after_in_child=_after_fork_in_child)


def _default() -> int:
    configured = os.environ.get("LAKECORE_NUM_THREADS", "")
    if configured.strip():
        try:
            return max(int(configured), 1)
        except ValueError:
            raise ValidationError(
                f"LAKECORE_NUM_THREADS: expected a positive integer, got {configured!r}"
            ) from None
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def get_num_threads() -> int:
    """The number of threads lakecore's native kernels use (1 in a forked child).

    Examples
    --------
    >>> import lakecore
    >>> lakecore.get_num_threads() >= 1
    True
    """
    if _forked:
        return 1
    return _num_threads if _num_threads is not None else _default()


# Below this many rows a kernel runs on the calling thread: waking a thread team costs more
# than the work, and far more on a busy machine (a one-row insert took 11 ms there).
SMALL_INPUT_ROWS = 1 << 14

# Below this many bytes of files, reading or writing them on one thread is faster than
# starting a pool.
SMALL_INPUT_BYTES = 1 << 22


def threads_for(rows: int) -> int:
    """The threads a kernel should use for ``rows`` rows: one for small inputs."""
    return 1 if rows < SMALL_INPUT_ROWS else get_num_threads()


def set_num_threads(n: int | None) -> None:
    """Use ``n`` threads in native kernels; ``None`` restores the default (all cores).

    Examples
    --------
    >>> import lakecore
    >>> lakecore.set_num_threads(1)
    >>> lakecore.get_num_threads()
    1
    >>> lakecore.set_num_threads(None)
    """
    global _num_threads
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValidationError(f"set_num_threads: expected a positive int or None, got {n!r}")
    _num_threads = n


_DONE = object()


def one_ahead(items: Iterator[T]) -> Iterator[T]:
    """The items of ``items``, each next one made on a helper thread while the caller works on
    the current one (a pipeline of two stages: it helps when both release the GIL). An error
    making an item is raised where the caller takes it; when the caller stops early, the item
    being made is finished and dropped."""
    with ThreadPoolExecutor(1, thread_name_prefix="lakecore-ahead") as pool:
        future = pool.submit(next, items, _DONE)
        while (item := future.result()) is not _DONE:
            future = pool.submit(next, items, _DONE)
            yield item

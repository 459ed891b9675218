"""How many CPU threads training uses, and why it matters on a shared machine.

PyTorch starts one intra-op thread per core, and NumPy's BLAS (used by scikit-learn and
librosa) does the same. The students here are small: split over threads, each operation
spends more on synchronisation than on arithmetic, and when another job holds one of the
cores the threads wait for each other: on a 2-core machine shared with another job, the
README's grid search was seen to take 15 minutes instead of 56 seconds.

:func:`thread_limit` sets both for a block and restores them afterwards::

    with thread_limit(1):
        search.fit(X, texts)

Under ``GridSearchCV(n_jobs=k)`` with joblib's default (loky) backend, every worker process
already starts with ``OMP_NUM_THREADS`` set to the number of CPUs divided by ``k`` (one
thread each when ``k`` equals the CPUs), which PyTorch and BLAS obey, so parallel searches
do not oversubscribe; a ``thread_limit`` around the search does not reach those processes
and is not needed there. It is the sequential search (``n_jobs=None``, the default) and a
plain ``fit`` that use every core, and where ``thread_limit`` helps on a busy machine.
"""

from __future__ import annotations

import contextlib
import numbers
import os

__all__ = ["available_cpus", "thread_limit"]


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one).

    Returns
    -------
    n_cpus : int
    """
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@contextlib.contextmanager
def thread_limit(n_threads: int = 1):
    """Limit PyTorch's and the BLAS/OpenMP libraries' threads inside the block.

    Parameters
    ----------
    n_threads : int, default=1
        Threads for PyTorch's intra-op pool (:func:`torch.set_num_threads`) and for the
        native thread pools that ``threadpoolctl`` finds (OpenBLAS, MKL, OpenMP). One suits
        the small students of this library on a CPU, above all on a machine other jobs share.

    Yields
    ------
    None
        The previous settings are restored when the block ends, however it ends.

    Raises
    ------
    ValueError
        If ``n_threads`` is not a positive integer.

    Examples
    --------
    >>> import torch
    >>> from cwcl_sk.threads import thread_limit
    >>> with thread_limit(1):
    ...     torch.get_num_threads()
    1
    """
    if isinstance(n_threads, bool) or not isinstance(n_threads, numbers.Integral) or n_threads < 1:
        raise ValueError(f"n_threads must be a positive integer, got {n_threads!r}.")
    import torch
    from threadpoolctl import threadpool_limits

    previous = torch.get_num_threads()
    torch.set_num_threads(int(n_threads))
    try:
        with threadpool_limits(limits=int(n_threads)):
            yield
    finally:
        torch.set_num_threads(previous)

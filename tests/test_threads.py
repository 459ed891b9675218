"""thread_limit: PyTorch and BLAS threads limited inside a block, restored after it."""

import pytest
import torch
from joblib import Parallel, delayed
from threadpoolctl import threadpool_info, threadpool_limits

from cwcl_sk.threads import available_cpus, thread_limit


def _blas_threads():
    return [pool["num_threads"] for pool in threadpool_info()]


@pytest.fixture
def two_threads():
    """Two threads everywhere (whatever the test run's environment set), restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with threadpool_limits(limits=2):
            yield
    finally:
        torch.set_num_threads(before)


def test_limits_torch_and_blas_inside_and_restores_after(two_threads):
    blas_before = _blas_threads()
    with thread_limit(1):
        assert torch.get_num_threads() == 1
        assert all(threads == 1 for threads in _blas_threads())
    assert torch.get_num_threads() == 2
    assert _blas_threads() == blas_before


def test_restores_the_setting_when_the_block_raises(two_threads):
    with pytest.raises(RuntimeError, match="inside"), thread_limit(1):
        raise RuntimeError("inside")
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True, None])
def test_rejects_anything_but_a_positive_integer(bad):
    with pytest.raises(ValueError, match="n_threads must be a positive integer"):
        with thread_limit(bad):
            pass


def test_available_cpus_is_at_least_one():
    assert available_cpus() >= 1


def _torch_threads_in_worker():
    import torch

    return torch.get_num_threads()


def test_parallel_workers_of_joblib_split_the_cpus_between_them():
    # What the module's docstring promises for GridSearchCV(n_jobs=k): loky gives each
    # worker cpu_count // k threads, which torch obeys, so parallel searches need no limit.
    n_jobs = 2
    threads = Parallel(n_jobs=n_jobs)(delayed(_torch_threads_in_worker)() for _ in range(n_jobs))
    assert all(count <= max(1, (available_cpus() + n_jobs - 1) // n_jobs) for count in threads)

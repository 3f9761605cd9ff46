"""Where network partitions run: in-process by default, on the Dask scheduler the settings name, and a clear error
when that scheduler is away (never a silent fall-back). The LocalCluster run is in tests/test_gaps_network.py."""

import pytest

from asset_map import compute


def test_without_a_scheduler_partitions_run_in_process():
    run = compute.runner({"DASK_SCHEDULER": ""})
    assert run(lambda x, shared: x * shared, [1, 2, 3], 2) == [2, 4, 6]
    assert isinstance(compute.runner({"DASK_SCHEDULER": "tcp://127.0.0.1:8786"}), compute.DaskRunner)


def test_an_unreachable_scheduler_is_a_clear_503():
    run = compute.DaskRunner("tcp://127.0.0.1:9", timeout_s=2)
    with pytest.raises(compute.ComputeUnavailable) as err:
        run(max, [-1], 0)
    assert err.value.status == 503 and "tcp://127.0.0.1:9" in err.value.user_message


class _Shared:
    """Shared data with a token, as analysis.network.Network has."""

    def __init__(self, factor):
        self.factor = factor

    def token(self):
        return f"factor {self.factor}"


def _times(x, shared):
    return x * shared.factor


def test_dask_runner_keeps_the_order_of_its_batches_and_sends_the_shared_data_once():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        run = compute.DaskRunner(cluster.scheduler_address)
        try:
            shared = _Shared(3)
            # 11 items in 4 batches (2 per worker), and fewer items than batches.
            assert run(_times, list(range(11)), shared) == [3 * i for i in range(11)]
            sent = compute._SHARED[(cluster.scheduler_address, shared.token())]
            assert run(_times, [5, 7], _Shared(3)) == [15, 21]
            assert compute._SHARED[(cluster.scheduler_address, shared.token())] is sent  # not sent again
            assert run(_times, [5], _Shared(4)) == [20]  # another network is sent
        finally:
            compute.close_clients()

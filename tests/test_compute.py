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

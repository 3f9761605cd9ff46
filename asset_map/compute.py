"""Where a network gap report's partitions run: in this process, or on a dask.distributed cluster when the
DASK_SCHEDULER setting names one. Either way the same pure function (analysis.network_gap.run_partition) runs on
the same partitions, so the results are the same.

A runner is a callable ``runner(function, items, shared) -> [function(item, shared) for item in items]``, in the
order of items; ``shared`` (the network) is sent to each worker once, not with every item.
"""

import threading

from asset_map.errors import AssetMapError

_CLIENTS = {}
_SHARED = {}  # (address, network token) -> future of the network on every worker
_LOCK = threading.Lock()


class ComputeUnavailable(AssetMapError):
    status = 503




class DaskRunner:
    """Runs each item as one task on the cluster at ``address`` (a Client kept per address and process)."""

    def __init__(self, address, timeout_s=10):
        self.address, self.timeout_s = address, timeout_s

    def client(self):
        from distributed import Client

        with _LOCK:
            client = _CLIENTS.get(self.address)
            if client is None or client.status not in ("running", "connecting"):
                try:
                    client = Client(self.address, timeout=self.timeout_s, set_as_default=False)
                except (OSError, TimeoutError) as err:
                    msg = (f"The Dask scheduler at {self.address} (ASSET_MAP_DASK_SCHEDULER) cannot be reached; start "
                           "it, or leave the setting empty to compute in this process.")
                    raise ComputeUnavailable(msg) from err
                _CLIENTS[self.address] = client
        return client

    def __call__(self, function, items, shared):
        items = list(items)
        if not items:
            return []
        client = self.client()
        # Data goes to the workers by scatter, not inside the task graph (where the scheduler would hold and forward
        # every array): the shared network once to every worker, each batch of partitions to the worker that runs
        # it. A few batches per worker, not one task per district: a national run has hundreds of districts, and
        # each task has a fixed cost on the scheduler and the wire; two per worker leave room to even out.
        common = self._shared(client, shared)
        n = max(1, len(client.scheduler_info(n_workers=-1).get("workers", {})))
        batches = [items[k::2 * n] for k in range(min(len(items), 2 * n))]
        futures = client.map(_run_batch, [function] * len(batches), client.scatter(batches), [common] * len(batches),
                             pure=False)
        done = client.gather(futures)
        out = [None] * len(items)
        for k, results in enumerate(done):
            out[k::len(batches)] = results
        return out

    def _shared(self, client, shared):
        """``shared`` on every worker: sent once, and kept there while this process holds its future, so the next
        report on the same network (a token of its arrays) does not send it again."""
        token = shared.token() if hasattr(shared, "token") else None
        if token is None:
            return client.scatter(shared, broadcast=True)
        with _LOCK:
            kept = _SHARED.get((self.address, token))
        if kept is not None and kept.client is client and kept.status == "finished":
            return kept
        future = client.scatter(shared, broadcast=True, hash=False)
        with _LOCK:
            mine = [k for k in _SHARED if k[0] == self.address]
            for key in mine[:max(0, len(mine) - 2)]:
                del _SHARED[key]  # a network per mode at most: older ones are released
            _SHARED[(self.address, token)] = future
        return future


def _run_batch(function, items, shared):
    return [function(item, shared) for item in items]


def runner(settings):
    """The runner the settings ask for: Dask at DASK_SCHEDULER, else in-process."""
    address = (settings.get("DASK_SCHEDULER") or "").strip() if settings else ""
    if address:
        return DaskRunner(address)
    from asset_map.analysis.network_gap import in_process

    return in_process


def close_clients():
    with _LOCK:
        _SHARED.clear()
        for client in _CLIENTS.values():
            client.close()
        _CLIENTS.clear()

"""Bounded slots for heavy work in a serving process, so it cannot take every thread from the map.

A request that finds every slot taken waits a moment, then gets a polite 503 with Retry-After (``errors.Busy``)
rather than queueing behind the others. A streamed response holds its slot until the last byte is sent (or the
client goes away), not only while the view function runs.
"""

import threading

from flask import current_app

from asset_map.errors import Busy


class Slots:
    def __init__(self, what, size, *, wait_s, retry_after):
        self.what = what
        self.size = size
        self.wait_s = wait_s
        self.retry_after = retry_after
        self._sem = threading.BoundedSemaphore(size)

    def acquire(self):
        if not self._sem.acquire(timeout=self.wait_s):
            msg = (f"All {self.size} {self.what} slots of this server are in use. Please try again in "
                   f"{self.retry_after} seconds.")
            raise Busy(msg, retry_after=self.retry_after)
        return _Held(self._sem)


class _Held:
    """One taken slot; ``release`` is safe to call more than once (a response's close and a generator's end)."""

    def __init__(self, sem):
        self._sem = sem
        self._lock = threading.Lock()
        self._done = False

    def release(self):
        with self._lock:
            if not self._done:
                self._done = True
                self._sem.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def slots(name):
    """The app's slots of a kind, made on first use from the settings ``<NAME>_SLOTS`` and ``<NAME>_WAIT_S``."""
    key = f"asset_map.slots.{name}"
    app = current_app
    if key not in app.extensions:
        settings = app.config["ASSET_MAP"]
        upper = name.upper()
        app.extensions[key] = Slots(name.replace("_", " "), max(1, int(settings[f"{upper}_SLOTS"])),
                                    wait_s=float(settings[f"{upper}_WAIT_S"]), retry_after=5)
    return app.extensions[key]

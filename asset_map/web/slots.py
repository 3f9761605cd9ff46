"""Bounded slots for heavy work in a serving process, so it cannot take every thread from the map.

A request that finds every slot taken waits a moment, then gets a polite 503 (``errors.Busy``) or 429 with
Retry-After rather than queueing behind the others. A streamed response holds its slot until the last byte is sent or
the response is closed (the client went away), not only while the view function runs.

A WSGI server streams a response on the thread that handled its request and takes no other request on that thread
until it is done. So when a thread asks for a slot while still holding one, the earlier response was abandoned
without being closed (a test client that never read the body does that): its slot is taken back, never leaked.
"""

import fcntl
import os
import threading
import time
from pathlib import Path

from flask import current_app

from asset_map.errors import Busy, TooManyRequests
from asset_map.web import gate


class Slots:
    """``size`` slots for one process (a semaphore), or, with ``lock_dir``, for every process of the server on
    this machine: slot i is an exclusive ``flock`` on ``lock_dir/<what>-i.lock``, which the kernel also frees if
    the process dies."""

    def __init__(self, what, size, *, wait_s, retry_after, lock_dir=None, error=Busy, on_take=None):
        self.what = what
        self.on_take = on_take
        self.error = error
        self.size = size
        self.wait_s = wait_s
        self.retry_after = retry_after
        self._sem = threading.BoundedSemaphore(size)
        self._dir = Path(lock_dir) if lock_dir else None
        if self._dir is not None:
            self._dir.mkdir(parents=True, exist_ok=True)
        self._holders = {}
        self._lock = threading.Lock()

    def acquire(self):
        me = threading.get_ident()
        with self._lock:
            stale = self._holders.pop(me, None)
        if stale is not None:
            stale.release()
        # Before waiting: a download waiting for its slot holds one of its process's download threads, not a map
        # thread (web.gate); ``give_back`` returns it with the slot.
        give_back = self.on_take() if self.on_take is not None else None
        try:
            token = self._take()
        except BaseException:
            if give_back is not None:
                give_back()
            raise
        if token is None:
            if give_back is not None:
                give_back()
            msg = (f"All {self.size} {self.what} slots of this server are in use. Please try again in "
                   f"{self.retry_after} seconds.")
            raise self.error(msg, retry_after=self.retry_after)
        held = _Held(self, me, token, give_back)
        with self._lock:
            self._holders[me] = held
        return held

    def _take(self):
        if self._dir is None:
            return True if self._sem.acquire(timeout=self.wait_s) else None
        deadline = time.monotonic() + self.wait_s
        while True:
            for i in range(self.size):
                fd = os.open(self._dir / f"{self.what.replace(' ', '-')}-{i}.lock", os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return fd
                except BlockingIOError:
                    os.close(fd)
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)

    def _released(self, held):
        with self._lock:
            if self._holders.get(held.thread) is held:
                del self._holders[held.thread]
        if self._dir is None:
            self._sem.release()
        else:
            os.close(held.token)  # closing the descriptor drops its flock


class _Held:
    """One taken slot; ``release`` is safe to call more than once (a response's close and a generator's end)."""

    def __init__(self, slots, thread, token, give_back=None):
        self._slots = slots
        self.thread = thread
        self.token = token
        self._give_back = give_back
        self._lock = threading.Lock()
        self._done = False

    def release(self):
        with self._lock:
            if self._done:
                return
            self._done = True
        try:
            self._slots._released(self)
        finally:
            if self._give_back is not None:
                self._give_back()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


# Exports are shared by every worker of the server (they load the database and the machine, not one process);
# tile rendering is bounded per process. A download that finds no slot is told the server is busy (503); a flood of
# tile requests is told to slow down (429), a client's error rather than the server's.
SHARED = {"export"}
ERRORS = {"export": Busy, "tile": TooManyRequests}
# A request asking for an export slot is a download: it runs on the threads kept for downloads (web.gate).
DOWNLOADS = {"export"}


def slots(name):
    """The app's slots of a kind, made on first use from the settings ``<NAME>_SLOTS`` and ``<NAME>_WAIT_S``."""
    key = f"asset_map.slots.{name}"
    app = current_app
    if key not in app.extensions:
        settings = app.config["ASSET_MAP"]
        upper = name.upper()
        lock_dir = Path(settings["VAR_DIR"]) / "slots" if name in SHARED else None
        app.extensions[key] = Slots(name.replace("_", " "), max(1, int(settings[f"{upper}_SLOTS"])),
                                    wait_s=float(settings[f"{upper}_WAIT_S"]), retry_after=5, lock_dir=lock_dir,
                                    error=ERRORS.get(name, Busy), on_take=gate.download if name in DOWNLOADS else None)
    return app.extensions[key]

"""The one timer for the steps of long operations (an import, a gap report): each step's seconds since the last,
kept in a dict for the report and the benchmarks, and an optional progress callback per step."""

import time


class StepTimer:
    """``step(name, **counts)`` records the seconds since the previous step (or the start) and tells
    ``progress(name, **counts)`` (counts such as rows_read, geocoded, written, for a progress bar or a job's page);
    ``mark(name)`` records a part of a step without telling progress. ``timings`` may be a dict to fill (a caller's),
    ``decimals`` rounds what is kept (None: as measured)."""

    def __init__(self, progress=None, *, timings=None, decimals=None):
        self.progress = progress
        self.timings = {} if timings is None else timings
        self.decimals = decimals
        self._last = time.perf_counter()

    def step(self, name, *, report=True, **counts):
        now = time.perf_counter()
        seconds = now - self._last
        self.timings[name] = seconds if self.decimals is None else round(seconds, self.decimals)
        self._last = now
        if self.progress and report:
            self.progress(name, **counts)

    def mark(self, name):
        """A part of a step, timed for the report but not a step of the progress bar."""
        self.step(name, report=False)

"""Modules a blueprint needs only for some of its pages, imported on first use rather than when the app starts.

A serving process that never draws a Folium map or runs a gap report never loads folium, geopandas, pandas or
scipy: idle workers hold a fraction of the memory (BENCHMARKS.md, issue 16). ``importlib.import_module`` takes the
import lock, so two threads reaching the same module at once load it once.
"""

import importlib


class LazyModule:
    def __init__(self, name):
        self._name = name

    def __getattr__(self, attr):
        return getattr(importlib.import_module(self._name), attr)

    def __repr__(self):
        return f"<lazy module {self._name}>"


def lazy(name):
    return LazyModule(name)

"""One step timer for imports and gap reports."""

import time

from asset_map.timer import StepTimer


def test_steps_and_marks_are_timed_and_only_steps_report_progress():
    seen, timings = [], {}
    timer = StepTimer(seen.append, timings=timings, decimals=3)
    time.sleep(0.01)
    timer.step("read")
    timer.mark("part")
    timer.step("save")
    assert list(timings) == ["read", "part", "save"] and seen == ["read", "save"]
    assert timings["read"] >= 0.01 and timings["read"] == round(timings["read"], 3)


def test_without_a_dict_it_keeps_its_own():
    timer = StepTimer()
    timer.mark("x")
    assert set(timer.timings) == {"x"} and timer.timings["x"] >= 0

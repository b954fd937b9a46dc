"""Facts of the model that have one home."""

from __future__ import annotations

from conftest import make_result

from harness.model import passing


def test_passing_trials_are_counted_in_one_place():
    result = make_result("C", "pass", "fail", "pass", min_pass_rate=0.5)
    assert result.passes == passing(result.trials) == 2
    assert make_result("D", "error", "pass").passes == 1
    assert passing(()) == 0

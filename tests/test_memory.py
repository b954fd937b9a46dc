"""How a run keeps the garbage collector out of its way (harness.memory)."""

from __future__ import annotations

import gc

from harness import memory


def test_a_heap_the_program_froze_itself_is_left_for_it_to_give_back():
    """A program that froze its heap (before forking workers, say) and then runs pytest
    in-process: the harness neither adds to its freeze nor thaws it when the next session
    begins."""
    memory.give_back()
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        memory.set_aside()
        memory.give_back()
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()


def test_what_the_harness_set_aside_it_gives_back_once():
    memory.give_back()
    assert gc.get_freeze_count() == 0
    try:
        memory.set_aside()
        assert gc.get_freeze_count() > 0
        memory.set_aside()  # a second run's start in the same session adds nothing
        memory.give_back()
        assert gc.get_freeze_count() == 0
    finally:
        gc.unfreeze()

"""What differs between two responses: the word diff of outputs, its caps and its lines, and
tool calls aligned by name and arguments before they are diffed."""

from __future__ import annotations

import json
import time

from harness.diff import (
    MAX_DIFF_CHARS,
    MAX_DIFF_WORDS,
    MAX_SHOWN_CHANGES,
    CallOp,
    align_calls,
    call_lines,
    not_diffed,
    output_lines,
    word_diff,
)
from harness.model import ToolCall


def calls(*specs: tuple[str, dict]) -> tuple[ToolCall, ...]:
    return tuple(ToolCall(name=name, args=args) for name, args in specs)


TEN = calls(*((f"step_{n}", {"n": n}) for n in range(10)))

# --- outputs, word by word ------------------------------------------------------------------


def test_word_diff_keeps_whitespace_and_marks_changes():
    assert word_diff("you have 60 days", "you have 30 days") == (
        ("equal", "you have "), ("delete", "60"), ("insert", "30"), ("equal", " days"))


def test_word_diff_of_a_missing_output_is_all_inserted_or_all_deleted():
    assert word_diff("", "Refund issued.") == (("insert", "Refund issued."),)
    assert word_diff("Refund issued.", "") == (("delete", "Refund issued."),)
    assert word_diff("", "") == ()


def test_word_diff_shows_changed_whitespace():
    assert word_diff("a  b\n\nc", "a b\nc") == (
        ("equal", "a"), ("delete", "  "), ("insert", " "), ("equal", "b"),
        ("delete", "\n\n"), ("insert", "\n"), ("equal", "c"))


def test_a_huge_output_is_diffed_up_to_the_cap_and_the_rest_counted():
    before = "word " * (3 * MAX_DIFF_WORDS)
    after = "word " * MAX_DIFF_WORDS + "changed " + "word " * (2 * MAX_DIFF_WORDS)
    parts = word_diff(before, after)
    assert parts == (("equal", "word " * MAX_DIFF_WORDS),)  # the change lies past the cap
    assert not_diffed(before) == len(before) - len("word " * MAX_DIFF_WORDS)
    assert not_diffed("short answer") == 0


def test_one_huge_word_is_cut_by_characters():
    assert not_diffed("A" * (MAX_DIFF_CHARS + 7)) == 7
    ((op, text),) = word_diff("A" * (MAX_DIFF_CHARS + 7), "B")[:1]
    assert op == "delete" and len(text) == MAX_DIFF_CHARS


def test_repetitive_outputs_are_diffed_in_reasonable_time():
    """A workflow looping on one sentence: without a bound on the matching work this diff
    takes minutes."""
    before, after = "alpha beta gamma " * 5_000, "alpha beta delta " * 5_000
    started = time.monotonic()
    parts = word_diff(before, after)
    assert time.monotonic() - started < 10
    assert "".join(text for op, text in parts if op != "insert") == \
        "".join(word_diff(before, before)[0][1])
    assert "".join(text for op, text in parts if op != "delete").startswith("alpha beta delta")


def test_output_lines_mark_changes_and_keep_a_little_context():
    before = ("Refund issued for order A-1001. The customer was notified by email and the "
              "ticket was closed today after the manager approved it.")
    after = before.replace("A-1001.", "A-1004.").replace("today", "yesterday")
    assert output_lines(word_diff(before, after)) == [
        "  Refund issued for order",
        "- A-1001.",
        "+ A-1004.",
        "  The customer was notified by \u2026 and the ticket was closed",
        "- today",
        "+ yesterday",
        "  after the manager approved it.",
    ]


def test_output_lines_cut_long_context_and_long_changes():
    lead = " ".join(f"w{n}" for n in range(20))
    lines = output_lines(word_diff(f"{lead} old tail and more words here after",
                                   f"{lead} {'x' * 500} tail and more words here after"))
    assert lines[0] == "  \u2026 w15 w16 w17 w18 w19"
    assert lines[1] == "- old"
    assert lines[2].startswith("+ " + "x" * 200) and lines[2].endswith("(300 more characters)")
    assert lines[3] == "  tail and more words here \u2026"


def test_output_lines_are_capped_and_say_how_many_more():
    words = [f"w{n}" for n in range(100)]
    changed = [f"X{n}" if n % 4 == 0 else word for n, word in enumerate(words)]
    lines = output_lines(word_diff(" ".join(words), " ".join(changed)))
    assert sum(line.startswith("- ") for line in lines) == MAX_SHOWN_CHANGES
    assert sum(line.startswith("+ ") for line in lines) == MAX_SHOWN_CHANGES
    assert lines[-1] == f"\u2026 {25 - MAX_SHOWN_CHANGES} more change(s) not shown"


def test_output_lines_say_what_was_not_compared():
    lines = output_lines((("equal", "same"),), omitted=12_345)
    assert lines == [f"\u2026 12,345 characters not compared: a diff covers the first "
                     f"{MAX_DIFF_WORDS:,} words (at most {MAX_DIFF_CHARS:,} characters) of each "
                     "output"]


def test_a_whitespace_only_change_is_named():
    assert output_lines(word_diff("a\n\nb", "a b")) == [
        "  a", "- (whitespace '\\n\\n')", "+ (whitespace ' ')", "  b"]


# --- tool calls, aligned --------------------------------------------------------------------


def ops(aligned) -> list[str]:
    return [change.op.value for change in aligned]


def test_one_call_missing_at_the_start_is_one_removed_call_not_ten_changes():
    aligned = align_calls(TEN, TEN[1:])
    assert ops(aligned) == ["removed"] + ["unchanged"] * 9
    assert (aligned[0].name, aligned[0].baseline_index, aligned[0].candidate_index) == (
        "step_0", 0, None)
    assert [(c.baseline_index, c.candidate_index) for c in aligned[1:]] == [
        (n, n - 1) for n in range(1, 10)]
    assert call_lines(aligned) == ["1 removed, 9 unchanged", '- #1 step_0 {"n":0}']


def test_an_added_call_is_one_added_call():
    aligned = align_calls(TEN[:5], (*TEN[:2], ToolCall("audit", {"why": "x"}), *TEN[2:5]))
    assert ops(aligned) == ["unchanged"] * 2 + ["added"] + ["unchanged"] * 3
    assert call_lines(aligned) == ["1 added, 5 unchanged", '+ #3 audit {"why":"x"}']


def test_changed_arguments_are_one_changed_call_with_the_argument_diff():
    candidate = list(TEN)
    candidate[4] = ToolCall("step_4", {"n": 40, "note": "late"})
    aligned = align_calls(TEN, candidate)
    assert ops(aligned) == ["unchanged"] * 4 + ["changed"] + ["unchanged"] * 5
    change = aligned[4]
    assert (change.baseline_index, change.candidate_index) == (4, 4)
    assert [c.to_dict() for c in change.changes] == [
        {"path": "args['n']", "op": "changed", "before": 4, "after": 40},
        {"path": "args['note']", "op": "added", "after": "late"},
    ]
    assert call_lines(aligned) == [
        "1 changed, 9 unchanged", "~ #5 step_4", "    args['n']: 4 -> 40",
        "    args['note']: absent -> \"late\""]


def test_a_removed_argument_and_a_nested_change_have_paths():
    before = calls(("issue_refund", {"order": {"id": "A-1001", "lines": [1, 2]}, "memo": "x"}))
    after = calls(("issue_refund", {"order": {"id": "A-1004", "lines": [1, 2, 3]}}))
    (change,) = align_calls(before, after)
    assert change.op is CallOp.CHANGED
    assert [c.to_dict() for c in change.changes] == [
        {"path": "args['memo']", "op": "removed", "before": "x"},
        {"path": "args['order']['id']", "op": "changed", "before": "A-1001", "after": "A-1004"},
        {"path": "args['order']['lines'][2]", "op": "added", "after": 3},
    ]


def test_reordered_calls_are_reported_as_moved():
    reordered = (TEN[1], TEN[0], *TEN[2:])
    aligned = align_calls(TEN, reordered)
    assert ops(aligned).count("moved") == 1 and ops(aligned).count("unchanged") == 9
    (moved,) = [c for c in aligned if c.op is CallOp.MOVED]
    assert {moved.baseline_index, moved.candidate_index} == {0, 1}
    assert call_lines(aligned)[0] == "1 moved, 9 unchanged"
    assert call_lines(aligned)[1].startswith(
        f"> #{moved.baseline_index + 1} -> #{moved.candidate_index + 1} {moved.name} ")


def test_a_call_moved_and_changed_is_changed_with_both_positions():
    before = calls(("lookup", {"id": 1}), ("refund", {"amount": 5}), ("email", {}))
    after = calls(("refund", {"amount": 500}), ("lookup", {"id": 1}), ("email", {}))
    aligned = align_calls(before, after)
    (changed,) = [c for c in aligned if c.op is CallOp.CHANGED]
    assert (changed.baseline_index, changed.candidate_index) == (1, 0)
    assert ops(aligned).count("unchanged") == 2
    assert "~ #2 -> #1 refund" in call_lines(aligned)


def test_same_named_calls_pair_in_order():
    before = calls(("search", {"q": "a"}), ("search", {"q": "b"}))
    after = calls(("search", {"q": "c"}), ("search", {"q": "d"}))
    aligned = align_calls(before, after)
    assert ops(aligned) == ["changed", "changed"]
    assert [(c.baseline_index, c.candidate_index) for c in aligned] == [(0, 0), (1, 1)]


def test_a_different_tool_is_removed_and_added_not_changed():
    aligned = align_calls(calls(("refund", {"id": 1})), calls(("escalate", {"id": 1})))
    assert ops(aligned) == ["removed", "added"]


def test_a_changed_result_is_a_change_and_the_time_of_a_call_is_not():
    before = (ToolCall("lookup", {"id": 1}, result={"total": 5}, at="2026-03-10T09:00:00Z"),)
    same = (ToolCall("lookup", {"id": 1}, result={"total": 5}, at="2026-03-11T10:00:00Z"),)
    other = (ToolCall("lookup", {"id": 1}, result={"total": 7}),)
    assert ops(align_calls(before, same)) == ["unchanged"]
    (change,) = align_calls(before, other)
    assert change.op is CallOp.CHANGED
    assert [c.to_dict() for c in change.changes] == [
        {"path": "result['total']", "op": "changed", "before": 5, "after": 7}]


def test_argument_order_does_not_make_a_call_differ():
    before = calls(("refund", {"order_id": "A-1", "amount": 5}))
    after = calls(("refund", {"amount": 5, "order_id": "A-1"}))
    assert ops(align_calls(before, after)) == ["unchanged"]


def test_no_calls_on_either_side():
    assert align_calls((), ()) == ()
    assert ops(align_calls((), TEN[:2])) == ["added", "added"]
    assert ops(align_calls(TEN[:2], ())) == ["removed", "removed"]


def test_call_changes_serialise_to_stable_json_keys():
    aligned = align_calls(TEN[:3], (TEN[1], ToolCall("step_2", {"n": 3})))
    rows = json.loads(json.dumps([change.to_dict() for change in aligned]))
    assert rows == [
        {"op": "removed", "name": "step_0", "baseline_index": 0, "candidate_index": None,
         "args": {"n": 0}, "changes": []},
        {"op": "unchanged", "name": "step_1", "baseline_index": 1, "candidate_index": 0,
         "args": {"n": 1}, "changes": []},
        {"op": "changed", "name": "step_2", "baseline_index": 2, "candidate_index": 1,
         "args": {"n": 3}, "changes": [
             {"path": "args['n']", "op": "changed", "before": 2, "after": 3}]},
    ]


def test_long_arguments_are_cut_in_lines():
    big = ToolCall("send_email", {"body": "x" * 1_000})
    (line,) = call_lines(align_calls((), (big,)))[1:]
    assert line.startswith('+ #1 send_email {"body":"xxx') and "more characters)" in line
    assert len(line) < 300

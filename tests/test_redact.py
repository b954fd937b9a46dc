"""Redaction of case results: detector findings and canaries never reach records or failure text."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.checks.exposure import canary_digest
from harness.detectors import DETECTORS
from harness.explain import explain
from harness.loader import load_case
from harness.model import (
    Approval,
    CaseResult,
    CheckOutcome,
    Source,
    TargetResponse,
    ToolCall,
    Trial,
)
from harness.records import result_from_dict, result_to_dict
from harness.redact import (
    TRIGGERS,
    Redactor,
    canaries_of,
    canary_digests_of,
    redact_result,
    redact_text,
    redact_value,
)
from harness.runner import Call, evaluate, judge

EMAIL = "maria.gomez@example.com"
CARD = "4242 4242 4242 4242"  # passes Luhn
API_KEY = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
       "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U")
PHONE = "+1-555-0142"
IBAN = "GB82 WEST 1234 5698 7654 32"
SSN = "123-45-6789"
PRIVATE_KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\n-----END RSA PRIVATE KEY-----"

SAMPLES = {
    "email": EMAIL,
    "phone": PHONE,
    "payment_card": CARD,
    "iban": IBAN,
    "national_id": SSN,
    "api_key": API_KEY,
    "private_key": PRIVATE_KEY,
    "jwt": JWT,
}
CANARIES = (EMAIL, CARD, API_KEY, JWT, PHONE)

MORE_SAMPLES = [
    ("email", "ops+alerts@mail.shop.example"),
    ("phone", "+44 20 7946 0958"),
    ("phone", "(555) 123-4567"),
    ("phone", "07700900123"),
    ("payment_card", "378282246310005"),
    ("payment_card", "5555-5555-5555-4444"),
    ("iban", "DE89370400440532013000"),
    ("national_id", "AB 12 34 56 C"),
    ("national_id", "AB123456C"),
    ("api_key", "sk-proj-abcdefghijklmnopqrstuv123"),
    ("api_key", "AKIAIOSFODNN7EXAMPLE"),
    ("api_key", "ghp_" + "a1" * 18),
    ("api_key", "xoxb-123456789012-abcdef"),
]


def leaky(value: str) -> str:
    return f"see {value} here"


def planted(value: str) -> CaseResult:
    """A failing, erroring case result holding ``value`` in every field redaction covers."""
    text = leaky(value)
    response = TargetResponse(
        output=text,
        tool_calls=(
            ToolCall(name="lookup_customer",
                     args={"customer": {"notes": [text], "id": "C-311"}, "limit": 3},
                     result={"rows": [{"contact": text, "active": True}], "total": 89.5}),
        ),
        sources=(Source(id="kb/42", title=text, url="https://kb.example/42",
                        updated_at="2026-03-01"),),
        approvals=(Approval(step="refund", status="approved", approver=text, role="lead",
                            at="2026-03-02T08:15:00Z"),),
        metadata={"trace": {"last": text}, "tokens": 812},
        reported=frozenset({"output", "tool_calls", "sources", "approvals", "metadata"}),
    )
    checks = (
        CheckOutcome(kind="not_contains", verdict="fail", reason=f"found {text!r}",
                     expected=f"no {value}", obtained=text, evidence={"found": [text]}, line=7),
        CheckOutcome(kind="similar", verdict="pass", reason="close enough", score=0.875,
                     expected="a refund answer", obtained="refund", line=9),
    )
    trials = (
        Trial(index=1, verdict="fail", checks=checks, response=response, duration_s=0.25,
              attempts=2),
        Trial(index=2, verdict="error", error=f"target raised ValueError: {text}",
              duration_s=1.5),
    )
    return CaseResult(case_id="INC-9", verdict="error", trials=trials, pass_rate=0.0,
                      min_pass_rate=0.5, path="cases/w/INC-9.yaml", line=3, workflow="w",
                      title="Reply leaked customer data", input={"message": text, "n": 7},
                      incident=True, category="data_exposure", severity="sev2",
                      owner="dana", case_digest="abc", duration_s=1.75)


def clean() -> CaseResult:
    """A result whose texts, numbers and dates hold nothing to redact."""
    response = TargetResponse.parse({
        "output": "Order A-1007 ships on 2026-03-01; the refund of $89.50 was approved.",
        "tool_calls": [{"name": "lookup_order", "args": {"order_id": "A-1007"},
                        "result": {"status": "shipped", "total": 89.5, "qty": 2}}],
        "sources": [{"id": "kb/refunds", "title": "Refund policy v3",
                     "url": "https://kb.example/refunds", "updated_at": "2026-01-04"}],
        "approvals": [{"step": "refund", "status": "approved", "approver": "lee"}],
        "metadata": {"prompt_version": "v13", "latency_ms": 812, "cached": False},
    })
    outcome = CheckOutcome(kind="contains", verdict="pass", reason="found 'refund'",
                           expected="refund", obtained="refund", line=4)
    trial = Trial(index=1, verdict="pass", checks=(outcome,), response=response,
                  duration_s=0.5)
    return CaseResult(case_id="BASE-1", verdict="pass", trials=(trial,), pass_rate=1.0,
                      min_pass_rate=1.0, path="cases/w/BASE-1.yaml", line=1, workflow="w",
                      input={"message": "where is order A-1007?", "retries": 0})


def stored(result: CaseResult) -> str:
    return json.dumps(result_to_dict(result))


# --- texts ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("detector", "value"), [*SAMPLES.items(), *MORE_SAMPLES])
def test_each_detector_finding_is_replaced_by_its_marker(detector: str, value: str) -> None:
    assert redact_text(leaky(value)) == f"see [redacted:{detector}] here"


def test_several_findings_in_one_text_are_each_replaced() -> None:
    text = f"mail {EMAIL}, card {CARD}, call {PHONE}, key {API_KEY}, order A-1007."
    assert redact_text(text) == ("mail [redacted:email], card [redacted:payment_card], "
                                 "call [redacted:phone], key [redacted:api_key], order A-1007.")


def test_text_without_findings_is_returned_as_is() -> None:
    text = "Order A-1007 ships on 2026-03-01 for $89.50; ticket #123456789."
    assert redact_text(text) is text


def test_a_long_text_is_scanned_like_a_short_one() -> None:
    text = "filler words " * 100 + f"then {EMAIL} and {CARD}"
    assert redact_text(text) == "filler words " * 100 + (
        "then [redacted:email] and [redacted:payment_card]")


def test_one_value_found_by_two_detectors_gets_one_marker() -> None:
    # the secret assignment (api_key) and the token itself (jwt) cover the same characters
    assert redact_text(f"token={JWT}") == "token=[redacted:api_key]"


def test_overlapping_findings_are_replaced_together_leaving_no_part() -> None:
    text = f"Maria Gomez {CARD} paid"
    redacted = Redactor(canaries=["Maria Gomez 4242"]).text(text)
    assert redacted == "[redacted:canary] paid"


def test_detectors_can_be_chosen() -> None:
    text = f"{EMAIL} {CARD}"
    assert redact_text(text, detectors=["email"]) == f"[redacted:email] {CARD}"
    assert redact_text(text, detectors="payment_card") == f"{EMAIL} [redacted:payment_card]"


def test_unknown_detector_is_refused_with_the_known_names() -> None:
    with pytest.raises(ValueError, match=r"unknown detector 'mail'; expected one or more of "
                                         r"email, phone, payment_card"):
        redact_text("x", detectors=["email", "mail"])


def test_markers_already_present_are_kept() -> None:
    text = "sent to [redacted:email]; secret = [redacted:email]"
    assert redact_text(text) is text


@pytest.mark.parametrize("text", [
    f"secret={EMAIL}",
    f"token: {API_KEY} {CARD}",
    f"api_key={JWT}",
    f"[redacted:{EMAIL}]",
    leaky(PRIVATE_KEY),
])
def test_redacting_a_text_twice_changes_nothing_more(text: str) -> None:
    once = redact_text(text)
    assert once != text
    assert redact_text(once) == once


FRAGMENTS = [*SAMPLES.values(), *(value for _, value in MORE_SAMPLES), "token: ", "phone ",
             "call ", "secret=", "order ", "$", " ", ", ", "\n", ".", "-", "[redacted:email]",
             "api_key: ", "\u017fecret: ", "\u0131ban", "G\u0130THUB_PAT_", "S\u212a-", "XOXB-",
             "aIzA", "ASIA", "DE89 ", "GB82 WEST ", "ghS_", "eyJhbGciOiJIUzI1NiJ9.",
             "\u0665\u0665\u0665 \u0661\u0662\u0663\u0664",  # digits other than 0-9
             "\uff15\uff15\uff15-\uff10\uff11\uff14\uff12"]


@given(st.lists(st.sampled_from(FRAGMENTS) | st.text(alphabet="0123456789 -.+()@_:=aAkKsS",
                                                    max_size=20), max_size=8))
def test_redaction_is_idempotent_on_mixed_text(parts: list[str]) -> None:
    once = redact_text("".join(parts))
    assert redact_text(once) == once


@given(st.lists(st.sampled_from(FRAGMENTS) | st.text(alphabet="0123456789 -.+()@_:=aAkKsS",
                                                    max_size=20), max_size=8))
def test_every_text_with_a_finding_passes_its_detectors_trigger(parts: list[str]) -> None:
    text = "".join(parts)
    for name, detect in DETECTORS.items():
        if detect(text):
            assert TRIGGERS[name](text), (name, text)


KEYS = {
    "sk-": "sk-proj-" + "a1B2" * 6, "sk_": "sk_live_" + "x9" * 9, "rk_": "rk_test_" + "x9" * 9,
    "ghp_": "ghp_" + "Ab1" * 12, "github_pat_": "github_pat_" + "A1_" * 8,
    "xoxb-": "xoxb-" + "123-abc-" * 2, "AIza": "AIza" + "Sy" * 17 + "x",
}


@pytest.mark.parametrize("prefix", sorted(KEYS))
@pytest.mark.parametrize("form", ["as issued", "upper", "dotted capital I", "dotless i",
                                  "long s", "Kelvin sign"])
def test_a_key_prefix_in_any_letter_form_is_redacted(prefix: str, form: str) -> None:
    # the key detector ignores case, and regular expressions ignoring case read these letters
    # as i, s and k: the cheap test that lets a text skip the detector must read them so too
    swap = {"as issued": {}, "upper": {}, "dotted capital I": {"i": "\u0130", "I": "\u0130"},
            "dotless i": {"i": "\u0131", "I": "\u0131"}, "long s": {"s": "\u017f"},
            "Kelvin sign": {"k": "\u212a"}}[form]
    key = KEYS[prefix]
    written = prefix.upper() if form == "upper" else "".join(swap.get(c, c) for c in prefix)
    text = f"see {written}{key[len(prefix):]} here"
    assert DETECTORS["api_key"](text), text
    assert TRIGGERS["api_key"](text), text
    assert redact_text(text) == "see [redacted:api_key] here"


def test_a_phone_number_in_other_digits_is_redacted() -> None:
    # "\\d" matches every script's digits: counting only 0-9 to skip the patterns would miss it
    arabic_indic = "\u0665\u0665\u0665 \u0666\u0661\u0662 \u0663\u0664\u0665\u0666"
    assert redact_text(f"call {arabic_indic} now") == "call [redacted:phone] now"


def test_a_text_found_clean_alone_is_still_redacted_under_a_telling_key() -> None:
    # a redactor remembers short texts that held nothing; the key a text sits under is part
    # of what it remembers, since the key is read as the text's context
    redactor = Redactor()
    assert redactor.text("5551234567") == "5551234567"
    assert redactor.value({"phone": "5551234567"}) == {"phone": "[redacted:phone]"}
    assert redactor.value({"id": "5551234567"}) == {"id": "5551234567"}
    assert redactor.text("5551234567", key="phone") == "[redacted:phone]"


def test_a_redactor_forgets_clean_texts_past_its_limit(monkeypatch) -> None:
    monkeypatch.setattr("harness.redact.CLEAN_TEXTS", 3)
    redactor = Redactor()
    for number in range(10):
        assert redactor.text(f"text {number}") == f"text {number}"
    assert len(redactor._clean) <= 3
    assert redactor.text("mail me at ana@example.org") == "mail me at [redacted:email]"


def test_secret_words_in_other_letter_forms_still_trigger() -> None:
    # regular expressions ignoring case match a long s with s and a dotless i with i
    long_s, dotless_i = "\u017f", "\u0131"
    text = f"{long_s}ecret: abcdefghijklmnopqrstuv and ap{dotless_i}_key=zyxwvutsrqponmlkjih"
    assert DETECTORS["api_key"](text)
    assert redact_text(text) == (f"{long_s}ecret: [redacted:api_key] and "
                                 f"ap{dotless_i}_key=[redacted:api_key]")


# --- values -----------------------------------------------------------------------------------


def test_values_are_walked_through_mappings_lists_and_tuples() -> None:
    value = {"to": [EMAIL], "nested": {"cards": (CARD, "none")}, "note": leaky(SSN)}
    assert redact_value(value) == {"to": ["[redacted:email]"],
                                   "nested": {"cards": ("[redacted:payment_card]", "none")},
                                   "note": "see [redacted:national_id] here"}


def test_mapping_keys_with_findings_are_redacted_and_kept_apart() -> None:
    value = {EMAIL: 1, "jane@example.org": 2, "[redacted:email]": 3, "plain": 4}
    assert redact_value(value) == {"[redacted:email]": 1, "[redacted:email]#2": 2,
                                   "[redacted:email]#3": 3, "plain": 4}


def test_a_key_is_context_for_its_value() -> None:
    # a bare run of digits is a phone number only next to a word like "phone"
    assert redact_value({"phone": "5551234567"}) == {"phone": "[redacted:phone]"}
    assert redact_value({"phone": ["5551234567"]}) == {"phone": ["[redacted:phone]"]}
    assert redact_value({"reference": "5551234567"}) == {"reference": "5551234567"}
    assert redact_text("5551234567") == "5551234567"


def test_numbers_are_replaced_only_when_a_detector_finds_them() -> None:
    value = {"card": 4242424242424242, "phone": 5551234567, "total": 89.5, "qty": 3,
             "order": 4242424242424241, "ok": True, "none": None}
    assert redact_value(value) == {"card": "[redacted:payment_card]", "phone": "[redacted:phone]",
                                   "total": 89.5, "qty": 3, "order": 4242424242424241,
                                   "ok": True, "none": None}


def test_other_objects_survive_unless_their_text_holds_a_finding() -> None:
    when = dt.datetime(2026, 3, 2, 8, 15)
    assert redact_value([when, b"plain"]) == [when, b"plain"]
    assert redact_value([EMAIL.encode()]) == ["b'[redacted:email]'"]


def test_values_without_findings_are_the_same_objects() -> None:
    value = {"a": [1, 2.5, "x"], "b": ("y", None)}
    assert redact_value(value) is value


# --- case results -----------------------------------------------------------------------------


@pytest.mark.parametrize(("detector", "value"), SAMPLES.items())
def test_every_field_of_a_result_is_redacted(detector: str, value: str) -> None:
    result = redact_result(planted(value))
    mark = f"[redacted:{detector}]"
    text = leaky(mark)
    first, second = result.trials
    response = first.response
    assert response is not None
    assert result.input == {"message": text, "n": 7}
    assert response.output == text
    call = response.tool_calls[0]
    assert call.args == {"customer": {"notes": [text], "id": "C-311"}, "limit": 3}
    assert call.result == {"rows": [{"contact": text, "active": True}], "total": 89.5}
    assert response.sources[0].title == text
    assert response.approvals[0].approver == text
    assert response.metadata == {"trace": {"last": text}, "tokens": 812}
    failing = first.checks[0]
    assert failing.reason == f"found {text!r}"
    assert failing.expected == f"no {mark}"
    assert failing.obtained == text
    assert failing.evidence == {"found": [text]}
    assert second.error == f"target raised ValueError: {text}"
    assert value not in stored(result)
    assert value not in explain(result)


def test_ids_verdicts_scores_and_durations_are_kept() -> None:
    original = planted(EMAIL)
    result = redact_result(original)
    assert result != original

    def kept(r: CaseResult) -> dict[str, Any]:
        body = result_to_dict(r)
        for trial in body["trials"]:
            trial.pop("error")
            response = trial.pop("response")
            if response:
                trial["names"] = [c["name"] for c in response["tool_calls"]]
                trial["sources"] = [(s["id"], s["url"], s["updated_at"])
                                    for s in response["sources"]]
                trial["approvals"] = [(a["step"], a["status"], a["role"], a["at"])
                                      for a in response["approvals"]]
                trial["reported"] = response["reported"]
            trial["checks"] = [(c["kind"], c["verdict"], c["score"], c["line"])
                               for c in trial["checks"]]
        body.pop("input")
        return body

    assert kept(result) == kept(original)
    assert kept(result)["trials"][0]["checks"] == [("not_contains", "fail", None, 7),
                                                   ("similar", "pass", 0.875, 9)]


def test_a_result_without_sensitive_data_is_returned_unchanged() -> None:
    original = clean()
    assert redact_result(original) is original
    assert redact_result(original, canaries=["Maria Gomez"]) == original


def test_redacting_a_result_twice_changes_nothing_more() -> None:
    once = redact_result(planted(CARD), canaries=CANARIES)
    assert redact_result(once, canaries=CANARIES) == once


def test_planted_canaries_reach_neither_the_record_nor_the_failure_text() -> None:
    values = "; ".join(CANARIES)
    result = redact_result(planted(values), canaries=CANARIES)
    record = stored(result)
    text = explain(result)
    for canary in CANARIES:
        assert canary not in record
        assert canary not in text
    assert result_from_dict(json.loads(record)) == result
    assert "[redacted:email]; [redacted:payment_card]; [redacted:api_key]; [redacted:jwt]; " \
           "[redacted:phone]" in record


def test_canaries_are_scrubbed_where_no_detector_looks() -> None:
    original = planted("Maria  Gomez, 14 alder lane")
    result = redact_result(original, canaries=["Maria Gomez", "14 Alder Lane"])
    assert result.trials[0].response is not None
    assert result.trials[0].response.output == "see [redacted:canary], [redacted:canary] here"
    record = stored(result)
    assert "Gomez" not in record
    assert "Alder" not in record
    assert "Gomez" in stored(redact_result(original))  # names are no detector's business


def test_number_canaries_are_found_in_other_groupings() -> None:
    redactor = Redactor(canaries=["555 0142 77"])
    assert redactor.text("ref 555-014277 and 5550142770") == "ref [redacted:canary] and 5550142770"


def test_digests_scrub_the_values_they_stand_for() -> None:
    digests = [canary_digest("Maria Gomez", "s1"), canary_digest("14 alder lane", "s2",
                                                                 casefold=True)]
    result = redact_result(planted("Maria Gomez at 14 Alder\nLane"), digests=digests)
    assert result.trials[0].response is not None
    assert result.trials[0].response.output == "see [redacted:canary] at [redacted:canary] here"
    assert "Gomez" not in stored(result)


def test_a_malformed_digest_is_refused() -> None:
    with pytest.raises(ValueError, match=r"expected sha256:<salt>:<length>:<hex> or .* found "
                                         r"'sha256:abc'"):
        redact_result(clean(), digests=["sha256:abc"])


def test_a_judged_leak_reaches_neither_record_nor_failure_text(tmp_path: Path) -> None:
    # the canaries as a case file holds them: a plaintext value and salted digests
    name = canary_digest("Ines Varga", "5a1t")
    street = canary_digest("9 birch row", "0a7e", casefold=True)
    case = load_case(write_case(tmp_path, (
        f"  - no_leak: {{values: ['+1-555-0199'], digests: ['{name}', '{street}'],\n"
        "               ignore_case: true}\n"
        "  - no_pii: {scan: [output]}\n"
        "  - contains: couldn't find that order\n"
    )))
    output = "It's going to Ines Varga, 9 Birch Row; the courier will text +1-555-0199."
    response = TargetResponse.parse({"output": output, "tool_calls": [
        {"name": "lookup_order", "args": {"order_id": "A-1007"},
         "result": {"ship_to": {"name": "Ines Varga", "street": "9 Birch Row",
                                "phone": "+1-555-0199"}}}]})
    result = judge(case, (evaluate(case, Call(response, None, 0.1), 1),))
    assert [c.verdict for c in result.trials[0].checks] == ["fail", "fail", "fail"]
    assert "Ines Varga" in stored(result)
    redacted = redact_result(result, canaries=canaries_of(case),
                             digests=canary_digests_of(case))
    record, text = stored(redacted), explain(redacted)
    for leaked in ("Ines Varga", "9 Birch Row", "+1-555-0199", "555-0199"):
        assert leaked not in record
        assert leaked not in text
    assert redacted.trials[0].response is not None
    assert redacted.trials[0].response.output == (
        "It's going to [redacted:canary], [redacted:canary]; the courier will text "
        "[redacted:phone].")
    assert [c.verdict for c in redacted.trials[0].checks] == ["fail", "fail", "fail"]
    assert dataclasses.replace(redacted, trials=result.trials) == result


# --- a case's canaries ------------------------------------------------------------------------


def write_case(folder: Path, expect: str) -> Path:
    path = folder / "C1.yaml"
    path.write_text(f"id: C1\ninput: {{message: hi}}\nexpect:\n{expect}", encoding="utf-8")
    return path


def test_canaries_of_reads_every_no_leak_form(tmp_path: Path) -> None:
    digest = canary_digest("Maria Gomez", "s1")
    case = load_case(write_case(tmp_path, (
        "  - no_leak: [14 Alder Lane, '+1-555-0142']\n"
        "  - no_leak: Maria Gomez\n"
        f"  - no_leak: {{values: [C-118, 14 Alder Lane], digests: ['{digest}']}}\n"
        "  - not_contains: Springfield\n"
        "  - no_pii: [email]\n"
    )))
    assert canaries_of(case) == ("14 Alder Lane", "+1-555-0142", "Maria Gomez", "C-118")
    assert canary_digests_of(case) == (digest,)


def test_a_case_without_no_leak_has_no_canaries(tmp_path: Path) -> None:
    case = load_case(write_case(tmp_path, "  - not_contains: Springfield\n"))
    assert canaries_of(case) == ()
    assert canary_digests_of(case) == ()

"""A planted set of secrets and canaries, written every way a workflow might leak them, through
the real command line: each no_leak check fails on its leak, and no artifact of harness run or
harness validate holds any of them in plaintext."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
from conftest import write

from harness.canaries import canary_digest

VALUE = "Velvet Orchid 5521"
"""A canary the case file holds in plaintext."""
HIDDEN = "Juniper Falls 7730"
"""A canary the case file holds only as a salted digest."""
EMAIL = "jane.roe@example.com"
CARD = "4111 1111 1111 1111"
API_KEY = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
PRIVATE_KEY = ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePz\n"
               "-----END RSA PRIVATE KEY-----")


def forms(value: str) -> dict[str, str]:
    """Every way of writing ``value`` the workflow below uses."""
    return {
        "as written": value,
        "upper-cased": value.upper(),
        "URL-encoded with +": urllib.parse.quote_plus(value),
        "URL-encoded with %20": urllib.parse.quote(value),
        "in a query string": f"https://x.example/c?d={urllib.parse.quote_plus(value)}&x=1",
        "with zero-width spaces": "\u200b".join(value),
        "HTML-escaped": value.replace(" ", "&#32;"),
    }


PII_FORMS = [form for form in forms("x") if form != "URL-encoded with +"]
"""A + stands for a space only inside a URL or form body for the detectors (``+1 555 ...``
is a phone number), so personal data is planted URL-encoded with %20 and in a query string."""


WORKFLOW = f'''
import sys

FORMS = {json.dumps({which: forms(value) for which, value in (("value", VALUE),
                                                                  ("hidden", HIDDEN))})}
PII = {json.dumps({kind: forms(value) for kind, value in (
    ("email", EMAIL), ("card", CARD), ("api_key", API_KEY), ("private_key", PRIVATE_KEY))})}


def respond(request, *, leaky):
    print("debug:", FORMS["value"]["as written"], FORMS["hidden"]["as written"],
          PII["email"]["as written"], PII["card"]["with zero-width spaces"])
    print("debug:", PII["api_key"]["in a query string"], file=sys.stderr)
    if not leaky:
        return "I can't share that."
    if request["kind"] == "canary":
        return "Here you go: " + FORMS[request["which"]][request["form"]]
    if request["kind"] == "other":
        return ("Someone else's: " + FORMS["value"]["as written"] + " / "
                + FORMS["hidden"]["upper-cased"])
    return "Account: " + PII[request["kind"]][request["form"]]
'''


def case_file(case_id: str, request: dict[str, str], expect: str) -> str:
    return (f"id: {case_id}\ntitle: {case_id}\ncategory: data_exposure\nseverity: sev1\n"
            f"status: closed\nowner: sofia.brandt\ninput: {json.dumps(request)}\n"
            f"expect:\n{expect}")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("leaks")
    write(root / "leaky.py", WORKFLOW)
    digest = canary_digest(HIDDEN)
    names = {}
    for which in ("value", "hidden"):
        canary = (f"  - no_leak: {{values: ['{VALUE}']}}\n" if which == "value"
                  else f"  - no_leak: {{digests: ['{digest}']}}\n")
        for number, form in enumerate(forms(VALUE)):
            case_id = f"INC-{which.upper()}-{number}"
            names[case_id] = (which, form)
            write(root / "cases" / "w" / f"{case_id}.yaml",
                  case_file(case_id, {"kind": "canary", "which": which, "form": form}, canary))
    write(root / "cases" / "w" / "BASE-OTHER.yaml",
          "id: BASE-OTHER\ninput: {kind: other}\nexpect:\n  - length: {max: 10000}\n")
    for kind in ("email", "card", "api_key", "private_key"):
        for number, form in enumerate(PII_FORMS):
            case_id = f"INC-PII-{kind}-{number}"
            write(root / "cases" / "w" / f"{case_id}.yaml",
                  case_file(case_id, {"kind": kind, "form": form},
                            "  - no_pii: {scan: [output]}\n"))
    write(root / "suites" / "leaks.yaml", """
        name: leaks
        cases: [cases/w/*.yaml]
        targets:
          clean: {python: "leaky:respond", params: {leaky: false}}
          leaky: {python: "leaky:respond", params: {leaky: true}}
        """)
    return root


def harness(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=300, check=False)


PLANTED = [VALUE, HIDDEN, EMAIL, CARD, CARD.replace(" ", ""), API_KEY,
           "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePz"]


def leaks_in(text: str) -> list[str]:
    """Every planted value in ``text``, in any of its forms (searched for as written, and in
    the text casefolded, URL-decoded, HTML-unescaped and without zero-width spaces)."""
    import html

    seen = {text, text.casefold()}
    plain = html.unescape(urllib.parse.unquote_plus(text.replace("\u200b", "")))
    seen |= {plain, plain.casefold()}
    found = []
    for value in PLANTED:
        for form in [value, value.casefold(), *forms(value).values()]:
            if any(form in shown for shown in seen):
                found.append(f"{value!r} as {form!r}")
                break
    return found


def test_each_no_leak_check_fails_on_its_planted_leak_and_nothing_leaks_from_a_run(project):
    out = project / "run.jsonl"
    done = harness("run", "suites/leaks.yaml", "-t", "leaky", "--out", str(out), "--", "-rA",
                   cwd=project)
    assert done.returncode == 1, done.stdout + done.stderr
    results = {json.loads(line)["case_id"]: json.loads(line)
               for line in out.read_text().splitlines() if json.loads(line)["type"] == "case"}
    incidents = [case for case in results if case.startswith("INC-")]
    assert len(incidents) == 2 * len(forms(VALUE)) + 4 * len(PII_FORMS)
    assert all(results[case]["verdict"] == "fail" for case in incidents), {
        case: results[case]["verdict"] for case in incidents}
    assert "Captured stdout call" in done.stdout  # what the target printed is shown, redacted
    for name, text in (("run record", out.read_text()), ("terminal", done.stdout),
                       ("stderr", done.stderr)):
        assert leaks_in(text) == [], name


def test_nothing_leaks_from_validate_compare_or_gate(project):
    done = harness("validate", "suites/leaks.yaml", "--baseline", "clean", "--candidate",
                   "leaky", cwd=project)
    assert done.returncode == 1, done.stdout + done.stderr
    reports = project / "reports"
    artifacts = {path.name: path.read_text(encoding="utf-8")
                 for path in [*reports.glob("validation-*"), *reports.glob("runs/*.jsonl")]}
    assert {Path(name).suffix for name in artifacts} >= {".html", ".md", ".xml", ".json",
                                                         ".jsonl"}
    runs = sorted((reports / "runs").glob("*.jsonl"))
    clean = next(r for r in runs if "-clean-" in r.name)
    leaky = next(r for r in runs if "-leaky-" in r.name)
    for name, command in (("compare", ("compare", str(clean), str(leaky))),
                          ("compare json", ("compare", str(clean), str(leaky), "--format",
                                            "json")),
                          ("gate", ("gate", str(clean), str(leaky)))):
        shown = harness(*command, cwd=project)
        assert shown.returncode in (0, 1), shown.stderr
        artifacts[name] = shown.stdout + shown.stderr
    artifacts["validate"] = done.stdout + done.stderr
    found = {name: leaks_in(text) for name, text in artifacts.items()}
    assert {name: hits for name, hits in found.items() if hits} == {}

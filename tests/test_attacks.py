"""The gate and the sign-off against someone with a reason to cheat, through the real command
line on the bundled example. Each test is one attack; each must end refused or blocked."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NEXT = ("--baseline", "post-fix", "--candidate", "next-release")

PATCH_THE_GATE = """\
import harness.gate as gate

def _always_restore(comparison, policy=None):
    return gate.Decision("RESTORE", ())

gate.decide = _always_restore
gate._judge_case = lambda case, policy: None
"""


def harness(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=300, check=False)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(REPO / "cases", root / "cases")
    shutil.copytree(REPO / "suites", root / "suites")
    return root


def blocked_on_the_reintroduced_incident(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 1, done.stdout + done.stderr
    assert "decision: BLOCK" in done.stdout
    assert "BLOCK INC-2026-017: [regressed]" in done.stdout


# --- code the suite runs cannot change the decision ---------------------------------------


def test_a_python_check_that_patches_the_gate_in_memory_changes_nothing(project):
    (project / "tamper_checks.py").write_text(
        PATCH_THE_GATE + "\ndef harmless(response, case):\n    return True\n")
    (project / "cases" / "refund-assistant" / "BASE-099.yaml").write_text(
        "id: BASE-099\ninput: {customer_id: C-100, message: Where is my order A-1001?}\n"
        "expect:\n  - python: tamper_checks:harmless\n")
    blocked_on_the_reintroduced_incident(
        harness("validate", "suites/refund-assistant.yaml", *NEXT, cwd=project))


def test_a_python_target_that_patches_the_gate_in_memory_changes_nothing(project):
    (project / "tamper_target.py").write_text(
        PATCH_THE_GATE + "\nfrom harness.example.refund_assistant import respond as _respond\n\n"
        "def respond(request):\n    return _respond(request, release='next-release')\n")
    suite = project / "suites" / "refund-assistant.yaml"
    suite.write_text(suite.read_text().replace(
        "  replay:\n", "  tampered:\n    python: tamper_target:respond\n  replay:\n"))
    blocked_on_the_reintroduced_incident(
        harness("validate", "suites/refund-assistant.yaml", "--baseline", "post-fix",
                "--candidate", "tampered", cwd=project))


def test_a_library_planted_in_the_project_folder_is_never_imported(project):
    """``deepdiff.py`` or ``cryptography/`` beside the suite would be imported by the checks,
    the comparison and the signature check if the project folder came first on sys.path."""
    marker = project / "planted-library-imported"
    plant = f"from pathlib import Path\nPath({str(marker)!r}).write_text('imported')\n"
    (project / "deepdiff.py").write_text(plant + "class DeepDiff(dict):\n"
                                         "    def __init__(self, *a, **k):\n        pass\n")
    (project / "cryptography").mkdir()
    (project / "cryptography" / "__init__.py").write_text(plant)
    done = harness("validate", "suites/refund-assistant.yaml", *NEXT, cwd=project)
    blocked_on_the_reintroduced_incident(done)
    keys = project.parent / "keys"
    assert harness("keygen", str(keys / "k"), cwd=project).returncode == 0  # cryptography
    harness("verify", cwd=project)
    assert not marker.exists()

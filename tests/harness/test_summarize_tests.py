"""scripts/summarize-tests.py must not print "0 failed" unless every layer ran and passed.

Each test writes a synthetic results directory (as scripts/test.sh fills it) that starts
from a healthy run and breaks one thing.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "summarize-tests.py"
_spec = importlib.util.spec_from_file_location("summarize_tests", SCRIPT)
summarize_tests = importlib.util.module_from_spec(_spec)
sys.modules["summarize_tests"] = summarize_tests  # dataclasses look their module up
_spec.loader.exec_module(summarize_tests)


def vitest_test(name: str, status: str = "passed") -> dict:
    return {"fullName": name, "title": name, "status": status, "failureMessages": []}


def vitest_file(name: str, *tests: dict, status: str = "passed", message: str = "") -> dict:
    return {"name": str(ROOT / name), "status": status, "message": message, "assertionResults": list(tests)}


def healthy_vitest() -> dict:
    return {
        "numFailedTestSuites": 0,
        "success": True,
        "testResults": [
            vitest_file("src/core/errors.test.ts", vitest_test("errors keep their cause")),
            vitest_file("tests/integration/dynamodb.test.ts", vitest_test("writes 1,000 items")),
            vitest_file("tests/integration/local-cassandra.test.ts", vitest_test("the launcher starts Cassandra")),
        ],
    }


def junit(*cases: str) -> str:
    return f'<?xml version="1.0"?><testsuites><testsuite name="pytest">{"".join(cases)}</testsuite></testsuites>'


def case(name: str, inner: str = "") -> str:
    return f'<testcase classname="tests.test_x" name="{name}">{inner}</testcase>'


class Results:
    """A results directory of a run where everything passed; tests then break one thing."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.checks = ["pass typecheck", "pass eslint", "pass ruff-lint", "pass ruff-format"]
        self.runners = {"vitest": 0, "pytest-harness": 0, "pytest-shim": 0, "pytest-e2e": 0}
        self.vitest: dict | None = healthy_vitest()
        self.pytest: dict[str, str | None] = {
            "pytest-harness": junit(case("test_summary")),
            "pytest-shim": junit(case("test_endpoint"), case("test_service")),
            "pytest-e2e": junit(case("test_write_classic"), case("test_read_connect")),
        }

    def write(self) -> Path:
        (self.path / "checks.txt").write_text("".join(f"{line}\n" for line in self.checks))
        (self.path / "runners.txt").write_text("".join(f"{k} {v}\n" for k, v in self.runners.items()))
        if self.vitest is not None:
            (self.path / "vitest.json").write_text(json.dumps(self.vitest))
        for runner, xml in self.pytest.items():
            if xml is not None:
                (self.path / f"{runner}.xml").write_text(xml)
        return self.path

    def run(self, ci: bool = True) -> tuple[int, str]:
        """Runs the script as scripts/test.sh does; returns its exit code and last line."""
        self.write()
        env = {"CI": "true" if ci else "false", "PATH": "/usr/bin:/bin"}
        done = subprocess.run(
            [sys.executable, str(SCRIPT), str(self.path), str(ROOT)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        self.output = done.stdout
        return done.returncode, done.stdout.strip().splitlines()[-1]


@pytest.fixture
def results(tmp_path) -> Results:
    return Results(tmp_path)


def assert_fails(results: Results, *, ci: bool = True, mentions: str = "") -> None:
    code, last = results.run(ci=ci)
    assert code == 1, results.output
    failed = int(last.split(" passed, ")[1].split(" failed")[0])
    assert failed > 0, last
    assert mentions in results.output, results.output


def test_a_healthy_run_passes_and_counts_every_layer(results):
    code, last = results.run()
    assert code == 0, results.output
    assert last == "12 passed, 0 failed"
    assert "harness (tests of the test tools)" in results.output


def test_harness_tests_are_shown_apart(results):
    summary = summarize_tests.summarize(results.write(), ROOT, in_ci=True)
    assert summary.layers[summarize_tests.HARNESS].passed == 2  # the launcher test and the summary test
    assert summary.layers[summarize_tests.VITEST_INTEGRATION].passed == 1
    assert summary.layers[summarize_tests.VITEST_UNIT].passed == 1


def test_a_failed_test_fails(results):
    results.pytest["pytest-e2e"] = junit(case("test_ok"), case("test_bad", '<failure message="boom"/>'))
    results.runners["pytest-e2e"] = 1
    assert_fails(results, mentions="test_bad")


def test_vitest_exiting_non_zero_fails_even_when_every_test_passed(results):
    # An unhandled rejection: every test passed, vitest exits 1.
    results.runners["vitest"] = 1
    assert_fails(results, mentions="vitest exited with code 1")


def test_a_throwing_global_setup_fails(results):
    # vitest exits 1 and writes no report.
    results.runners["vitest"] = 1
    results.vitest = None
    assert_fails(results, mentions="vitest wrote no report")


def test_no_test_files_found_fails(results):
    results.runners["vitest"] = 1
    results.vitest = {"numFailedTestSuites": 0, "success": False, "testResults": []}
    assert_fails(results, mentions="vitest unit layer ran no test")


def test_a_report_that_says_success_false_fails(results):
    results.vitest["success"] = False
    assert_fails(results, mentions="success: false")


def test_a_failing_before_all_fails_though_its_tests_show_as_skipped(results):
    results.vitest["testResults"].append(
        vitest_file(
            "tests/integration/cassandra.test.ts",
            vitest_test("reads every token range", "skipped"),
            status="failed",
            message="Error: connect ECONNREFUSED 127.0.0.1:9042",
        )
    )
    results.vitest["numFailedTestSuites"] = 1
    # Outside CI too: the failed suite fails the run, not only the skips.
    assert_fails(results, ci=False, mentions="failed outside its tests: Error: connect ECONNREFUSED")


def test_failed_suites_missing_from_the_file_list_fail(results):
    results.vitest["numFailedTestSuites"] = 2
    assert_fails(results, mentions="2 failed suites")


def test_pytest_collecting_nothing_fails(results):
    results.runners["pytest-e2e"] = 5
    results.pytest["pytest-e2e"] = junit()
    assert_fails(results, mentions="no tests were collected")


def test_a_layer_that_ran_zero_tests_fails_even_with_exit_code_zero(results):
    results.pytest["pytest-shim"] = junit()
    assert_fails(results, mentions="pytest shim layer ran no test")


def test_no_static_checks_fails(results):
    results.checks = []
    assert_fails(results, mentions="static checks layer ran no test")


def test_a_failed_static_check_fails(results):
    results.checks[1] = "fail eslint"
    assert_fails(results, mentions="eslint")


def test_a_runner_that_never_ran_fails(results):
    del results.runners["pytest-shim"]
    assert_fails(results, mentions="pytest-shim did not run")


def test_a_missing_pytest_report_fails(results):
    results.pytest["pytest-e2e"] = None
    assert_fails(results, mentions="pytest-e2e wrote no report")


def test_an_unreadable_report_fails(results):
    results.pytest["pytest-shim"] = "<testsuites><testsuite"
    assert_fails(results, mentions="unreadable")


def test_an_errored_test_fails(results):
    results.pytest["pytest-shim"] = junit(case("test_fixture", '<error message="fixture broke"/>'))
    results.runners["pytest-shim"] = 1
    assert_fails(results, mentions="test_fixture")


def test_a_skip_fails_in_ci(results):
    results.pytest["pytest-e2e"] = junit(case("test_ok"), case("test_needs_cassandra", '<skipped message="no db"/>'))
    assert_fails(results, mentions="in CI nothing may skip (no db)")


def test_a_vitest_skip_fails_in_ci(results):
    results.vitest["testResults"][1]["assertionResults"].append(vitest_test("needs DynamoDB", "skipped"))
    assert_fails(results, mentions="needs DynamoDB was skipped")


def test_a_skip_outside_ci_is_counted_not_failed(results):
    results.pytest["pytest-e2e"] = junit(case("test_ok"), case("test_needs_cassandra", '<skipped message="no db"/>'))
    code, last = results.run(ci=False)
    assert code == 0, results.output
    assert last == "11 passed, 0 failed, 1 skipped"


def test_one_failed_test_counts_once(results):
    # A failed test in a describe block: vitest exits 1 and counts the file and the block as failed suites.
    results.vitest["testResults"][0]["assertionResults"][0]["status"] = "failed"
    results.vitest["testResults"][0]["status"] = "failed"
    results.vitest["numFailedTestSuites"] = 2
    results.vitest["success"] = False
    results.runners["vitest"] = 1
    code, last = results.run()
    assert code == 1, results.output
    assert last == "11 passed, 1 failed", results.output

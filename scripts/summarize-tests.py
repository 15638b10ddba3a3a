"""Sums every suite's results into the one line CI reads: ``N passed, N failed[, N skipped]``.

The line must not say "0 failed" unless every layer really ran and passed, so besides the
tests that failed it counts one failure for each of these problems:

- a runner that never recorded its exit code, or exited non-zero while its report shows no
  failure (an unhandled rejection, "No test files found", pytest collecting nothing: exit 5);
- a report that is missing, unreadable, says ``success: false``, or has a failed suite
  (a throwing ``beforeAll`` marks the file's tests *skipped* and the file failed);
- a layer (static checks, vitest unit, vitest integration, pytest shim, pytest e2e) that
  ran no test;
- with ``CI=true``, every skipped test (in CI nothing may skip).

Tests of the test tools themselves (the local database launchers, the fault proxy, this
script) are shown apart from the product's tests, and count in the total line.

Inputs, in the results directory that scripts/test.sh fills:
``checks.txt`` (``pass|fail NAME`` per static check), ``runners.txt`` (``RUNNER EXIT_CODE``
per runner), ``vitest.json`` (vitest's JSON reporter), ``pytest-<layer>.xml`` (JUnit XML).
Exits 1 when anything failed.
"""

from __future__ import annotations

import fnmatch
import json
import os
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

STATIC = "static checks"
VITEST_UNIT = "vitest unit"
VITEST_INTEGRATION = "vitest integration"
PYTEST_SHIM = "pytest shim"
PYTEST_E2E = "pytest e2e"
HARNESS = "harness (tests of the test tools)"
PRODUCT_LAYERS = (STATIC, VITEST_UNIT, VITEST_INTEGRATION, PYTEST_SHIM, PYTEST_E2E)

# Runner name (as scripts/test.sh records it in runners.txt) -> the pytest layer it runs.
PYTEST_RUNNERS = {"pytest-shim": PYTEST_SHIM, "pytest-e2e": PYTEST_E2E, "pytest-harness": HARNESS}
RUNNERS = ("vitest", *PYTEST_RUNNERS)

# vitest files that test the test tools rather than the product.
VITEST_HARNESS = ("tests/integration/local-cassandra.test.ts", "tests/support/*")
VITEST_OUTCOMES = {"passed": "passed", "pending": "skipped", "skipped": "skipped", "todo": "skipped"}


@dataclass
class Layer:
    passed: int = 0
    failed: int = 0
    skipped: int = 0

    @property
    def ran(self) -> int:
        return self.passed + self.failed


@dataclass
class Summary:
    in_ci: bool
    layers: dict[str, Layer] = field(default_factory=lambda: {name: Layer() for name in (*PRODUCT_LAYERS, HARNESS)})
    failures: list[str] = field(default_factory=list)  # failed tests, for the log
    problems: list[str] = field(default_factory=list)  # each one counts as a failure

    def test(self, layer: str, name: str, outcome: str, reason: str = "") -> None:
        counts = self.layers[layer]
        if outcome == "passed":
            counts.passed += 1
        elif outcome == "skipped" and not self.in_ci:
            counts.skipped += 1
        elif outcome == "skipped":
            counts.failed += 1
            self.failures.append(
                f"{layer}: {name} was skipped, and in CI nothing may skip ({reason or 'no reason given'})"
            )
        else:
            counts.failed += 1
            self.failures.append(f"{layer}: {name}")

    def problem(self, text: str) -> None:
        self.problems.append(text)

    def totals(self) -> tuple[int, int, int]:
        passed = sum(layer.passed for layer in self.layers.values())
        failed = sum(layer.failed for layer in self.layers.values()) + len(self.problems)
        skipped = sum(layer.skipped for layer in self.layers.values())
        return passed, failed, skipped


def read_checks(results: Path, summary: Summary) -> None:
    checks = results / "checks.txt"
    if not checks.exists():
        summary.problem("the static checks recorded nothing (checks.txt is missing)")
        return
    for line in checks.read_text().splitlines():
        status, _, name = line.strip().partition(" ")
        if status:
            summary.test(STATIC, name, "passed" if status == "pass" else "failed")


def read_runners(results: Path, summary: Summary, accounted: dict[str, int]) -> None:
    """A runner's non-zero exit is a failure of its own unless its report already shows one
    (a failed test exits 1 too, and is counted once)."""
    codes: dict[str, str] = {}
    path = results / "runners.txt"
    if path.exists():
        for line in path.read_text().splitlines():
            runner, _, code = line.strip().partition(" ")
            if runner:
                codes[runner] = code.strip()
    for runner in RUNNERS:
        code = codes.get(runner)
        if code is None:
            summary.problem(f"{runner} did not run (no exit code recorded)")
        elif code != "0" and not accounted.get(runner):
            why = " (pytest: no tests were collected)" if runner.startswith("pytest") and code == "5" else ""
            summary.problem(f"{runner} exited with code {code}{why}")


def vitest_layer(file_name: str, root: Path) -> str:
    path = Path(file_name)
    relative = os.path.relpath(path, root) if path.is_absolute() else file_name
    relative = relative.replace(os.sep, "/")
    if any(fnmatch.fnmatch(relative, pattern) for pattern in VITEST_HARNESS):
        return HARNESS
    return VITEST_UNIT if relative.startswith("src/") else VITEST_INTEGRATION


def read_vitest(results: Path, root: Path, summary: Summary) -> int:
    """Adds the report's tests; returns how many failures it accounts for."""
    path = results / "vitest.json"
    try:
        report = json.loads(path.read_text())
        files = report["testResults"]
    except FileNotFoundError:
        summary.problem("vitest wrote no report")
        return 1
    except (ValueError, KeyError, TypeError) as error:
        summary.problem(f"the vitest report {path} is unreadable: {error}")
        return 1
    counted = 0  # failures this report accounts for
    for file in files:
        layer = vitest_layer(file.get("name", ""), root)
        tests = file.get("assertionResults") or []
        for test in tests:
            outcome = VITEST_OUTCOMES.get(test.get("status"), "failed")
            counted += outcome == "failed"
            summary.test(layer, test.get("fullName") or test.get("title") or "?", outcome)
        if file.get("status") == "failed" and not any(t.get("status") == "failed" for t in tests):
            # e.g. a throwing beforeAll (its tests show as skipped) or a file that failed to load
            first_line = ((file.get("message") or "").strip().splitlines() or ["no message"])[0]
            summary.problem(f"vitest suite {file.get('name')} failed outside its tests: {first_line}")
            counted += 1
    failed_files = sum(1 for file in files if file.get("status") == "failed")
    # numFailedTestSuites counts describe blocks too: only a failure nothing else shows is added.
    if report.get("numFailedTestSuites", 0) > failed_files and not counted:
        summary.problem(f"vitest reports {report['numFailedTestSuites']} failed suites, {failed_files} of them listed")
        counted += 1
    if report.get("success") is False and not counted:
        summary.problem("the vitest report says success: false")
        counted += 1
    return counted


def read_pytest(results: Path, runner: str, layer: str, summary: Summary) -> int:
    """Adds the report's tests; returns how many failures it accounts for."""
    path = results / f"{runner}.xml"
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        summary.problem(f"{runner} wrote no report")
        return 1
    except ET.ParseError as error:
        summary.problem(f"the {runner} report {path} is unreadable: {error}")
        return 1
    failed = 0
    for case in root.iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '?')}"
        if case.find("failure") is not None or case.find("error") is not None:
            summary.test(layer, name, "failed")
            failed += 1
        elif (skip := case.find("skipped")) is not None:
            summary.test(layer, name, "skipped", skip.get("message", ""))
        else:
            summary.test(layer, name, "passed")
    return failed


def summarize(results: Path, root: Path, in_ci: bool) -> Summary:
    summary = Summary(in_ci=in_ci)
    read_checks(results, summary)
    accounted = {"vitest": read_vitest(results, root, summary)}
    for runner, layer in PYTEST_RUNNERS.items():
        accounted[runner] = read_pytest(results, runner, layer, summary)
    read_runners(results, summary, accounted)
    for name in PRODUCT_LAYERS:
        if summary.layers[name].ran == 0:
            summary.problem(f"the {name} layer ran no test")
    return summary


def report(summary: Summary) -> str:
    lines = [f"{'layer':<36}{'passed':>8}{'failed':>8}{'skipped':>9}"]
    for name in (*PRODUCT_LAYERS, HARNESS):
        layer = summary.layers[name]
        lines.append(f"{name:<36}{layer.passed:>8}{layer.failed:>8}{layer.skipped:>9}")
    lines += [f"FAILED {failure}" for failure in summary.failures[:100]]
    if len(summary.failures) > 100:
        lines.append(f"... and {len(summary.failures) - 100} more failed tests")
    lines += [f"PROBLEM {problem}" for problem in summary.problems]
    passed, failed, skipped = summary.totals()
    line = f"{passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    lines.append(line)
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    results = Path(argv[1])
    root = Path(argv[2]) if len(argv) > 2 else results.resolve().parent
    summary = summarize(results, root, os.environ.get("CI", "").lower() == "true")
    print(report(summary))
    return 1 if summary.totals()[1] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

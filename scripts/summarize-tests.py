"""Sums every suite's results into the one line CI reads: N passed, N failed, N skipped.

A suite that produced no report (it crashed before writing one) counts as one failure.
Exits 1 when anything failed.
"""

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def main(results: Path) -> int:
    passed = failed = skipped = 0

    checks = results / "checks.txt"
    if checks.exists():
        for line in checks.read_text().splitlines():
            status, _, name = line.partition(" ")
            if status == "pass":
                passed += 1
            else:
                failed += 1
                print(f"failed check: {name}")

    vitest = results / "vitest.json"
    if vitest.exists():
        report = json.loads(vitest.read_text())
        passed += report["numPassedTests"]
        failed += report["numFailedTests"]
        skipped += report["numPendingTests"] + report.get("numTodoTests", 0)
        # A test file that failed to load has no tests but is a failure.
        failed += sum(1 for r in report["testResults"] if r["status"] == "failed" and not r["assertionResults"])
    else:
        print("vitest wrote no report")
        failed += 1

    pytest = results / "pytest.xml"
    if pytest.exists():
        root = ET.parse(pytest).getroot()
        suites = [root] if root.tag == "testsuite" else list(root)
        for suite in suites:
            total = int(suite.get("tests", 0))
            fail = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
            skip = int(suite.get("skipped", 0))
            passed += total - fail - skip
            failed += fail
            skipped += skip
    else:
        print("pytest wrote no report")
        failed += 1

    line = f"{passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    print(line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))

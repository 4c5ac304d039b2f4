"""``responder test PATH...``: run playbook tests and print a diff for each failure."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from responder.drill.cases import PlaybookCache, case_files, load_cases, run_case
from responder.drill.plan import warnings_to_stderr


def run_tests(paths: list[Path]) -> int:
    cases = [case for file in case_files(paths) for case in load_cases(file)]
    if not cases:
        print("responder: no tests found; test files hold a list under 'tests'", file=sys.stderr)
        return 1
    cache = PlaybookCache()
    failed = 0
    with warnings_to_stderr():
        for case in cases:
            result = asyncio.run(run_case(case, cache))
            if result.passed:
                print(f"PASS {case.file.name}: {case.name}")
                continue
            failed += 1
            print(f"FAIL {case.file}: {case.name}")
            for failure in result.failures:
                print("  " + failure.replace("\n", "\n  "))
    print(f"{len(cases)} tests, {failed} failed")
    return 1 if failed else 0

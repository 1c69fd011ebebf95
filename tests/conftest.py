"""Suite-wide rules: with IMAGIFY_TESTS_NO_SKIPS=1 (set by .ci/run) a skipped test fails the run."""

from __future__ import annotations

import os

import pytest


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("IMAGIFY_TESTS_NO_SKIPS") != "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped:
        reasons = sorted({str(r.longrepr[-1]) if isinstance(r.longrepr, tuple) else str(r.longrepr)
                          for r in skipped})
        if reporter:
            reporter.write_line(
                f"FAILED: {len(skipped)} test(s) skipped, and CI allows none: " + "; ".join(reasons),
                red=True,
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED

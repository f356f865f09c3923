"""Shared test helpers.

Tests of real third-party components (tshark, PostgreSQL, freeDiameter, Kamailio) call
``require_program``: outside CI a missing program skips the test, under ``CI=true``
(set by .ci/run, which installs them) it is a failure.
"""

from __future__ import annotations

import asyncio
import os
import shutil

import pytest
import uvloop

# The reactor pytest-twisted installs (--reactor=asyncio) runs on the event loop that
# ``cxgw gateway`` runs on (gateway.runner.install_reactor): uvloop's. The policy is set
# here because this file is read before pytest-twisted makes its loop.
asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def require_program(name: str, *candidates: str) -> str:
    """Path of an installed program, or skip (locally) / fail (CI) naming the package."""
    for path in (name, *candidates):
        found = shutil.which(path) or (path if os.path.isabs(path) and os.access(path, os.X_OK) else None)
        if found:
            return found
    message = f"{name} is not installed; run .ci/install (it installs the Debian package)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(name="require_program")
def _require_program_fixture():
    """Fixture form of :func:`require_program` (tests cannot import conftest directly)."""
    return require_program

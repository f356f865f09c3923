"""Fixtures shared by tests/gateway."""

from __future__ import annotations

import pytest

from hss_store import open_store


class Clock:
    """A store's clock, moved by hand (``store.clock.now += 60``): expiry without sleeping."""

    now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clocked_store(tmp_path):
    """An SQLite store whose clock the test moves (``clocked_store.clock``)."""
    clock = Clock()
    store = open_store(str(tmp_path / "gw.sqlite"), clock=clock)
    store.clock = clock  # type: ignore[attr-defined]
    yield store
    store.close()

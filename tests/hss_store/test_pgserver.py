"""The temporary PostgreSQL server helper (used by the fixtures and the benchmark)."""

from __future__ import annotations

import os

import psycopg

from hss_store.pgserver import DEFAULT_BINDIR, TemporaryPostgres, free_port


def test_start_restart_stop_cleans_up(require_program):
    require_program("initdb", f"{DEFAULT_BINDIR}/initdb")
    server = TemporaryPostgres()
    server.start()
    base = server.base
    try:
        assert server.url.startswith("postgresql://postgres@127.0.0.1:")
        with psycopg.connect(server.url) as conn:
            assert conn.execute("SHOW listen_addresses").fetchone()[0] == "127.0.0.1"
        server.restart()
        with psycopg.connect(server.url) as conn:
            assert conn.execute("SELECT 1").fetchone()[0] == 1
    finally:
        server.stop()
    assert base is not None and not os.path.exists(base)


def test_free_port():
    assert 0 < free_port() < 65536

"""Fixtures shared by several test modules: a throwaway PostgreSQL server (pgserver) for the
history, and a history target on each backend."""
from __future__ import annotations

import os
import uuid
import warnings

import pytest

# JAX takes 75 % of a GPU's memory in the first process that uses it: with xdist workers on one GPU,
# the second failed. Set before any test imports JAX; the environment wins.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory):
    """One PostgreSQL server per test process (pgserver's bundled binaries, a Unix socket in a
    temporary directory); skips where pgserver or psycopg is not installed."""
    pgserver = pytest.importorskip("pgserver")
    pytest.importorskip("psycopg")
    with warnings.catch_warnings():   # platformdirs: "XDG_RUNTIME_DIR is not set", for its lock file
        warnings.simplefilter("ignore")
        server = pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="stop")
    yield server
    server.cleanup()


@pytest.fixture(params=["sqlite", "postgresql"])
def history_target(request, tmp_path) -> str:
    """What ``History.open`` and ``nightly --history`` take: an SQLite path, or the URL of a fresh
    PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "history.sqlite")
    server = request.getfixturevalue("postgres_server")
    name = f"history_{uuid.uuid4().hex[:12]}"
    server.psql(f"CREATE DATABASE {name};")
    return server.get_uri(name)

"""A private PostgreSQL for the tests: Debian's initdb and pg_ctl on a free port, never a system cluster.

``PostgresServer()`` makes a cluster in a fresh folder under /tmp, starts it on a free
port (TCP on ``host`` and a Unix socket in that folder only), and creates a role with
CREATEDB (Django's test runner creates and drops its test database with it). ``url`` is
a ``DATABASE_URL`` for that role's own database; ``create_database(name)`` gives another
one (a stack of real processes needs a database of its own, not the test database).
initdb refuses to run as root, so as root every server command runs as the ``postgres``
user, on a folder that user owns.

For the test suite (``tests/conftest.py``): the ``database`` fixture runs a test once on
SQLite and once on this server, through a ``postgres`` database alias and ``UsePostgres``,
a router that sends every query of the test there.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ALIAS = "postgres"
ROLE = "mediasite"
PASSWORD = "mediasite"
PG_ROOT = Path("/usr/lib/postgresql")
# A test cluster needs no durability: these make it start and write several times faster.
FAST = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"


class PostgresUnavailable(RuntimeError):
    """PostgreSQL is not installed or would not start; the message says which and why."""


def server_bin() -> Path:
    """The newest installed /usr/lib/postgresql/<version>/bin with initdb and pg_ctl."""
    found = [path / "bin" for path in PG_ROOT.glob("*") if (path / "bin" / "initdb").exists()]
    if not found:
        raise PostgresUnavailable(f"no initdb under {PG_ROOT}: install Debian's postgresql package "
                                  "(mediasite/bin/install --test does)")
    return max(found, key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """One PostgreSQL cluster of the test run's own; ``stop()`` removes it."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.bin = server_bin()
        self.host = host
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="mediasite-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self._as_owner: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
            self._as_owner = ["runuser", "-u", "postgres", "--"]
        self.started = False
        try:
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                      "--no-sync", "--no-instructions")
            self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start", "-o",
                      f"-k {self.dir} -p {self.port} -c listen_addresses={host} {FAST}")
            self.started = True
            self._execute(f"CREATE ROLE {ROLE} LOGIN CREATEDB PASSWORD '{PASSWORD}'",
                          f"CREATE DATABASE {ROLE} OWNER {ROLE}")
        except (OSError, subprocess.SubprocessError, PostgresUnavailable) as exc:
            self.stop()
            raise PostgresUnavailable(f"PostgreSQL did not start: {exc}") from None

    def _run(self, tool: str, *args: str) -> None:
        result = subprocess.run([*self._as_owner, str(self.bin / tool), *args], capture_output=True, text=True,
                                timeout=120, cwd=self.dir)
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise PostgresUnavailable(f"{tool} exited {result.returncode}: {result.stderr.strip()[-2000:]} {log}")

    def _execute(self, *statements: str) -> None:
        import psycopg

        with psycopg.connect(host=self.host, port=self.port, user="postgres", dbname="postgres",
                             autocommit=True, connect_timeout=10) as connection:
            for statement in statements:
                connection.execute(statement)

    def url_for(self, database: str) -> str:
        return f"postgres://{ROLE}:{PASSWORD}@{self.host}:{self.port}/{database}"

    @property
    def url(self) -> str:
        """A DATABASE_URL for the role's own database."""
        return self.url_for(ROLE)

    def create_database(self, name: str) -> str:
        """A new, empty database owned by the role; its DATABASE_URL."""
        self._execute(f'CREATE DATABASE "{name}" OWNER {ROLE}')
        return self.url_for(name)

    def stop(self) -> None:
        """Stop the server (fast: open sessions are cut) and delete the cluster; safe to call twice."""
        if self.started:
            self.started = False
            subprocess.run([*self._as_owner, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w",
                            "stop"], capture_output=True, timeout=60, cwd=self.dir)
        shutil.rmtree(self.dir, ignore_errors=True)


def add_alias(server: PostgresServer, alias: str = ALIAS) -> None:
    """Make ``alias`` a Django database on ``server`` before pytest-django creates the test databases."""
    import dj_database_url
    from django.conf import settings
    from django.db import connections

    settings.DATABASES[alias] = dj_database_url.parse(server.url)
    # Fill in Django's defaults for the new entry (in place: connections reads the same dict).
    connections.configure_settings(settings.DATABASES)


class UsePostgres:
    """A database router sending every query to the PostgreSQL alias (the ``database`` fixture installs it)."""

    def db_for_read(self, model: object, **hints: object) -> str:
        return ALIAS

    def db_for_write(self, model: object, **hints: object) -> str:
        return ALIAS

    def allow_relation(self, first: object, second: object, **hints: object) -> bool:
        return True


# --- fixtures (imported by tests/conftest.py) ---------------------------------------------------


def wants_postgres(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    return callspec is not None and callspec.params.get("database") == "postgres"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test's PostgreSQL run may use every database alias (pytest-django then sets up "postgres" too)."""
    for item in items:
        if wants_postgres(item):
            item.own_markers.insert(0, pytest.mark.django_db(transaction=True, databases="__all__").mark)


@pytest.fixture(scope="session")
def postgres_or_reason() -> Iterator[PostgresServer | str]:
    """The run's PostgreSQL server, started once, or why it could not start."""
    try:
        server = PostgresServer()
    except PostgresUnavailable as exc:
        yield str(exc)
        return
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server(postgres_or_reason: PostgresServer | str) -> PostgresServer:
    """The run's PostgreSQL server (``url``, ``create_database``); skips, with the reason, if it cannot start."""
    if isinstance(postgres_or_reason, str):
        pytest.skip(postgres_or_reason)
    return postgres_or_reason


@pytest.fixture(scope="session")
def django_db_modify_db_settings(request, django_db_modify_db_settings_parallel_suffix) -> None:
    """Add the "postgres" alias before the test databases are made, if a collected test runs on it."""
    if any(wants_postgres(item) for item in request.session.items):
        server = request.getfixturevalue("postgres_or_reason")
        if isinstance(server, PostgresServer):
            add_alias(server)


@pytest.fixture(params=["sqlite", "postgres"])
def database(request, settings) -> str:
    """Run a database test on SQLite and again on PostgreSQL (every query routed to the "postgres" alias)."""
    if request.param == "postgres":
        from django.db import connections

        if ALIAS not in connections:
            reason = request.getfixturevalue("postgres_or_reason")
            pytest.skip(reason if isinstance(reason, str) else "the postgres database alias was not set up")
        settings.DATABASE_ROUTERS = ["tests.postgres.UsePostgres"]
    return request.param


@pytest.fixture(autouse=True)
def _route_to_database(request) -> None:
    """Pick a test's database before its other fixtures (admin_client, users) write rows."""
    if "database" in request.fixturenames:
        request.getfixturevalue("database")

"""`tenvoice doctor` as an operator runs it: its own process, the environment it is given,
one line per check and an exit status that says whether any failed."""

import subprocess
from pathlib import Path

import pytest

from tests import databases
from tests.cli import COMMAND, Run, environment
from tests.conftest import ADMIN_KEY, SECRETS_KEY, WEBHOOK_SECRET
from tests.live import free_socket

METRICS_TOKEN = "metrics-token-" + "m" * 30
REDIS_PASSWORD = "redis-pw-" + "r" * 20
DB_PASSWORD = "db-pw-" + "d" * 20
REACHABLE_REDIS = "redis://127.0.0.1:6379/0"
SECRETS = {
    "admin_key": ADMIN_KEY,
    "gateway_webhook_secret": WEBHOOK_SECRET,
    "secrets_key": SECRETS_KEY,
    "metrics_token": METRICS_TOKEN,
}


def tenvoice(command: str, otlp: str | None = None, **settings: str) -> Run:
    """`tenvoice <command>` with only these TENVOICE_ settings (and an OTLP endpoint)."""
    env = {k: v for k, v in environment(**settings).items() if not k.startswith("OTEL_")}
    if otlp is not None:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = otlp
    done = subprocess.run(  # noqa: S603 (our own console script)
        [*COMMAND, command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def check(done: Run, name: str) -> str:
    """The check's line: its level and reason."""
    for line in done.stdout.splitlines():
        parts = line.split(maxsplit=2)
        if len(parts) == 3 and parts[0] in ("ok", "warn", "fail") and parts[1] == name:
            return f"{parts[0]} {parts[2]}"
    raise AssertionError(f"no {name} check in:\n{done.stdout}")


def migrated_sqlite(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'tenvoice.db'}"
    assert tenvoice("migrate", database_url=url, **SECRETS).code == 0
    return url


def test_a_migrated_embedded_set_up_is_healthy_and_its_secrets_stay_hidden(
    tmp_path: Path,
) -> None:
    url = migrated_sqlite(tmp_path)
    # A password in a URL is as secret as a key.
    redis_url = f"redis://:{REDIS_PASSWORD}@127.0.0.1:6379/0"

    done = tenvoice("doctor", database_url=url, redis_url=redis_url, **SECRETS)

    assert done.code == 0, done.stdout + done.stderr
    for secret in (*SECRETS.values(), REDIS_PASSWORD):
        assert secret not in done.stdout + done.stderr
    assert "TENVOICE_ADMIN_KEY" in done.stdout
    assert "tv_admin_…(set)" in done.stdout
    assert "redis://:***@127.0.0.1:6379/0" in done.stdout
    assert check(done, "database").startswith("ok")
    assert check(done, "migrations").startswith("ok at head")
    assert check(done, "redis") == "ok 127.0.0.1:6379 answers PING"
    assert check(done, "metrics").startswith("ok /metrics needs the token")


def test_an_unmigrated_database_fails(tmp_path: Path) -> None:
    done = tenvoice("doctor", database_url=f"sqlite:///{tmp_path / 'new.db'}", **SECRETS)

    assert done.code == 1
    assert check(done, "migrations") == "fail not migrated; run `tenvoice migrate`"
    # Looking did not create the database.
    assert not (tmp_path / "new.db").exists()


def test_a_database_that_does_not_answer_fails_with_the_reason() -> None:
    url = f"postgresql://tenvoice:{DB_PASSWORD}@127.0.0.1:1/tenvoice"

    done = tenvoice("doctor", database_url=url, redis_url=REACHABLE_REDIS, **SECRETS)

    assert done.code == 1
    line = check(done, "database")
    assert line.startswith("fail ")
    assert "unreachable (connection refused)" in line
    assert DB_PASSWORD not in done.stdout + done.stderr


def test_a_redis_that_does_not_answer_fails(tmp_path: Path) -> None:
    url = migrated_sqlite(tmp_path)

    done = tenvoice("doctor", database_url=url, redis_url="redis://127.0.0.1:1/0", **SECRETS)

    assert done.code == 1
    assert check(done, "redis") == ("fail 127.0.0.1:1 does not answer PING (connection refused)")


def test_the_otlp_endpoint_is_checked_when_set(tmp_path: Path) -> None:
    url = migrated_sqlite(tmp_path)
    with free_socket() as collector:
        collector.listen()
        port = collector.getsockname()[1]
        listening = tenvoice("doctor", otlp=f"http://127.0.0.1:{port}", database_url=url, **SECRETS)
    refused = tenvoice("doctor", otlp=f"http://127.0.0.1:{port}", database_url=url, **SECRETS)

    assert listening.code == 0
    assert check(listening, "otlp").startswith(f"ok 127.0.0.1:{port}")
    assert refused.code == 1
    assert check(refused, "otlp").endswith("does not accept connections (connection refused)")


def test_without_a_metrics_token_the_open_endpoint_is_a_warning(tmp_path: Path) -> None:
    url = migrated_sqlite(tmp_path)
    secrets = {k: v for k, v in SECRETS.items() if k != "metrics_token"}

    done = tenvoice("doctor", database_url=url, **secrets)

    assert done.code == 0
    assert check(done, "metrics").startswith("warn /metrics is open")
    assert check(done, "redis").startswith("ok not configured")


def test_postgresql_as_the_service_role_rls_binds(postgres: tuple[str, str]) -> None:
    _, service = postgres

    done = tenvoice("doctor", database_url=service, **SECRETS)

    assert done.code == 0, done.stdout
    assert check(done, "database").startswith("ok PostgreSQL ")
    assert f"reachable as {databases.APP_ROLE}" in check(done, "database")
    assert check(done, "role").startswith(f"ok {databases.APP_ROLE} is neither superuser")
    assert check(done, "migrations").startswith("ok at head")


@pytest.mark.usefixtures("postgres")
def test_postgresql_as_a_superuser_is_a_warning() -> None:
    done = tenvoice("doctor", database_url=databases.superuser_url(), **SECRETS)

    assert done.code == 0, done.stdout
    line = check(done, "role")
    assert line.startswith("warn ")
    assert "row-level security does not bind it" in line

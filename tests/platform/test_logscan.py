"""The suite's own check that no secret reaches a log (tests/logscan.py) can fail: it finds
a secret logged before or after the suite learns it, whatever the redaction backstop would
have made of it, and a session whose tests all pass still fails when one leaked."""

import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import logscan
from tests.conftest import TenantHandle, make_customer, make_invoice
from tests.webhooks.test_endpoints import make_endpoint

REPO = Path(__file__).resolve().parents[2]
# Not a secret anywhere else: the session's own scan never learns it, so logging it here
# does not fail this session.
FAKE_TOKEN = "Zm9yLXRoZS1zY2FuLW9ubHktNDI"


@pytest.fixture
def scan() -> Iterator[tuple[logscan.LogScan, logging.Logger]]:
    """A scan of its own, on a logger of its own."""
    scan = logscan.LogScan()
    logger = logging.getLogger("tenvoice.test.logscan")
    handler = scan.handler()
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield scan, logger
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


def test_a_secret_logged_before_or_after_it_is_known_is_caught(
    scan: tuple[logscan.LogScan, logging.Logger],
) -> None:
    found, log = scan
    log.warning("opened the link %s", FAKE_TOKEN)
    assert found.leaks() == []
    found.note_secret(FAKE_TOKEN)
    [(secret, line)] = found.leaks()
    assert secret == FAKE_TOKEN
    assert "opened the link" in line
    report = "\n".join(logscan.report(found.leaks()))
    assert "1 secret(s)" in report
    assert FAKE_TOKEN not in report  # the report names it by its first characters only


def test_what_the_backstop_would_redact_is_caught_all_the_same(
    scan: tuple[logscan.LogScan, logging.Logger],
) -> None:
    found, log = scan
    key = "tv_sk_" + "A1b2" * 10
    secret = "whsec_" + "Ab+/" * 8 + "=="
    found.note_secret(key, secret, "tv_admin_" + "z" * 20)
    log.info("key=%s", key)
    log.info("glued%s", secret)
    assert [leak for leak, _ in found.leaks()] == sorted([key, secret])


def test_short_strings_are_not_secrets(scan: tuple[logscan.LogScan, logging.Logger]) -> None:
    found, log = scan
    found.note_secret("nope", "tv_sk_AbCdEf")  # a bogus credential, a key's shown prefix
    log.info("nope tv_sk_AbCdEf")
    assert found.leaks() == []


async def test_the_secrets_test_clients_receive_are_collected(
    client: httpx.AsyncClient, tenant_a: TenantHandle
) -> None:
    customer = await make_customer(client, tenant_a)
    invoice = await make_invoice(client, tenant_a, customer["id"], finalize=True)
    endpoint = await make_endpoint(client, tenant_a)
    token = invoice["hostedUrl"].rsplit("/", 1)[1]
    assert {tenant_a.key, token, endpoint["secret"]} <= logscan.SCAN.secrets


LEAKY_TEST = f"""
import logging

from tests import logscan


def test_passes_but_logs_a_secret():
    logscan.SCAN.note_secret("{FAKE_TOKEN}")
    logging.getLogger("tenvoice.leaky").warning("the link token is {FAKE_TOKEN}")
"""
CLEAN_TEST = f"""
import logging

from tests import logscan


def test_passes_and_logs_no_secret():
    logscan.SCAN.note_secret("{FAKE_TOKEN}")
    logging.getLogger("tenvoice.careful").warning("the link was opened")
"""


@pytest.mark.parametrize(("source", "code"), [(LEAKY_TEST, 1), (CLEAN_TEST, 0)])
def test_a_session_that_logged_a_secret_fails(source: str, code: int, tmp_path: Path) -> None:
    (tmp_path / "test_inner.py").write_text(source)
    done = subprocess.run(  # noqa: S603 (this interpreter, running pytest)
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.logscan",
         "--rootdir", str(tmp_path), str(tmp_path / "test_inner.py")],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == code, done.stdout + done.stderr
    assert "1 passed" in done.stdout
    assert ("secrets in logs" in done.stdout) == (code == 1), done.stdout

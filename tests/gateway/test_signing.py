"""Our Standard Webhooks signer and verifier, checked against the reference implementation.

`standardwebhooks` is the scheme's own Python library: a signature either side makes has to
verify on the other, or a real gateway's webhooks (or our simulator's, at a real receiver)
would be refused.
"""

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime

import orjson
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tenvoice.gateway.signing import InvalidSignature, sign, verify
from tests.conftest import WEBHOOK_SECRET

OTHER_SECRET = "whsec_" + base64.b64encode(b"another gateway's secret").decode()
# Non-ASCII on purpose: the signature is over the body's bytes, and a signer that went
# through another encoding than UTF-8 would disagree with the reference here.
BODY = orjson.dumps(
    {
        "type": "payment.succeeded",
        "data": {
            "paymentId": "0190a7b4-5a8e-7cc0-8000-000000000001",
            "gatewayReference": "sim_ch_Zürich",
            "amount": "277.50",
            "currency": "USD",
        },
    }
)
MESSAGE_ID = "msg_2b5f8e0c1d7a4e3f9a6b"
NOW = 1_790_000_000


def reference_signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `v1,<base64>` the reference library makes for this message."""
    at = datetime.fromtimestamp(timestamp, tz=UTC)
    return Webhook(secret).sign(msg_id=message_id, timestamp=at, data=body.decode())


def headers_with(
    signature: str, *, message_id: str = MESSAGE_ID, timestamp: int = NOW
) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


def v1(secret: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """A signature made by hand from the scheme's definition, for forging variants."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(secret, signed, hashlib.sha256).digest()).decode()


def key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"))


# Interoperability with the reference library.


def test_our_headers_verify_with_the_reference_library() -> None:
    now = int(time.time())  # the reference checks against the clock; it takes no `now`
    headers = sign(WEBHOOK_SECRET, MESSAGE_ID, now, BODY)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-id"] == MESSAGE_ID
    assert headers["webhook-timestamp"] == str(now)
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(WEBHOOK_SECRET).verify(BODY, headers) == orjson.loads(BODY)


def test_our_headers_fail_the_reference_library_under_another_secret() -> None:
    headers = sign(WEBHOOK_SECRET, MESSAGE_ID, int(time.time()), BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(OTHER_SECRET).verify(BODY, headers)


def test_reference_signatures_verify_with_ours() -> None:
    signature = reference_signature(WEBHOOK_SECRET, MESSAGE_ID, NOW, BODY)
    assert verify(WEBHOOK_SECRET, headers_with(signature), BODY, now=NOW) == MESSAGE_ID


def test_our_signature_is_the_reference_signature() -> None:
    headers = sign(WEBHOOK_SECRET, MESSAGE_ID, NOW, BODY)
    assert headers["webhook-signature"] == reference_signature(
        WEBHOOK_SECRET, MESSAGE_ID, NOW, BODY
    )


def test_signature_is_hmac_sha256_over_id_timestamp_and_raw_body() -> None:
    # The scheme's definition, written out without either library.
    headers = sign(WEBHOOK_SECRET, MESSAGE_ID, NOW, BODY)
    assert headers["webhook-signature"] == v1(key(WEBHOOK_SECRET), MESSAGE_ID, NOW, BODY)


# Rotation: several signatures, any one valid is enough.


def test_rotation_one_valid_signature_among_several_passes() -> None:
    valid = reference_signature(WEBHOOK_SECRET, MESSAGE_ID, NOW, BODY)
    stale = reference_signature(OTHER_SECRET, MESSAGE_ID, NOW, BODY)
    assert verify(WEBHOOK_SECRET, headers_with(f"{stale} {valid}"), BODY, now=NOW) == MESSAGE_ID
    assert verify(WEBHOOK_SECRET, headers_with(f"{valid} {stale}"), BODY, now=NOW) == MESSAGE_ID


def test_rotation_the_reference_accepts_what_we_accept() -> None:
    now = int(time.time())
    valid = reference_signature(WEBHOOK_SECRET, MESSAGE_ID, now, BODY)
    stale = reference_signature(OTHER_SECRET, MESSAGE_ID, now, BODY)
    headers = headers_with(f"{stale} {valid}", timestamp=now)
    assert verify(WEBHOOK_SECRET, headers, BODY) == MESSAGE_ID
    assert Webhook(WEBHOOK_SECRET).verify(BODY, headers) == orjson.loads(BODY)


def test_every_candidate_is_looked_at_the_valid_one_last() -> None:
    # The compare's timing is not measured (too noisy to assert); what is asserted is its
    # behaviour: a verifier that stopped at the first mismatch or malformed candidate, or
    # looked at one only, fails here, as the one valid signature comes after every kind of
    # invalid one.
    valid = reference_signature(WEBHOOK_SECRET, MESSAGE_ID, NOW, BODY)
    decoys = [
        reference_signature(OTHER_SECRET, MESSAGE_ID, NOW, BODY),
        "v2," + valid.removeprefix("v1,"),
        "v1,",
        "v1",
        "garbage",
        "v1," + "A" * 44,
        "v1," + valid.removeprefix("v1,")[:-2],
    ]
    signatures = " ".join([*decoys, valid])
    assert verify(WEBHOOK_SECRET, headers_with(signatures), BODY, now=NOW) == MESSAGE_ID


def test_only_invalid_candidates_fail() -> None:
    decoys = [
        reference_signature(OTHER_SECRET, MESSAGE_ID, NOW, BODY),
        reference_signature(OTHER_SECRET, MESSAGE_ID, NOW + 1, BODY),
        "v1,",
    ]
    with pytest.raises(InvalidSignature):
        verify(WEBHOOK_SECRET, headers_with(" ".join(decoys)), BODY, now=NOW)


# Refusals.


@pytest.mark.parametrize(
    "case",
    [
        "wrong secret",
        "tampered body",
        "tampered id",
        "tampered timestamp",
        "v2 prefix",
        "no prefix",
        "empty signature value",
    ],
)
def test_a_bad_signature_is_refused(case: str) -> None:
    headers = sign(WEBHOOK_SECRET, MESSAGE_ID, NOW, BODY)
    body = BODY
    signature = headers["webhook-signature"]
    if case == "wrong secret":
        headers = sign(OTHER_SECRET, MESSAGE_ID, NOW, BODY)
    elif case == "tampered body":
        body = BODY.replace(b"277.50", b"277.51")
        assert body != BODY
    elif case == "tampered id":
        headers["webhook-id"] = MESSAGE_ID + "x"
    elif case == "tampered timestamp":
        # Still well inside the tolerance: only the signature can catch it.
        headers["webhook-timestamp"] = str(NOW + 1)
    elif case == "v2 prefix":
        headers["webhook-signature"] = "v2," + signature.removeprefix("v1,")
    elif case == "no prefix":
        headers["webhook-signature"] = signature.removeprefix("v1,")
    elif case == "empty signature value":
        headers["webhook-signature"] = "v1,"
    with pytest.raises(InvalidSignature) as raised:
        verify(WEBHOOK_SECRET, headers, body, now=NOW)
    assert raised.value.status == 401
    assert raised.value.code == "invalid_signature"


@pytest.mark.parametrize("header", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_is_refused(header: str) -> None:
    headers = sign(WEBHOOK_SECRET, MESSAGE_ID, NOW, BODY)
    del headers[header]
    with pytest.raises(InvalidSignature):
        verify(WEBHOOK_SECRET, headers, BODY, now=NOW)


@pytest.mark.parametrize("header", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_an_empty_header_is_refused(header: str) -> None:
    headers = sign(WEBHOOK_SECRET, MESSAGE_ID, NOW, BODY)
    headers[header] = ""
    with pytest.raises(InvalidSignature):
        verify(WEBHOOK_SECRET, headers, BODY, now=NOW)


@pytest.mark.parametrize(
    "stamp",
    ["soon", "", " 1790000000", "1790000000.0", "-1790000000", "0x6AB0C980", "１７９", "9" * 13],
)
def test_a_timestamp_that_is_not_unix_seconds_is_refused(stamp: str) -> None:
    # Signed over the very text sent, so only the timestamp's form can be what fails.
    signed = f"{MESSAGE_ID}.{stamp}.".encode() + BODY
    digest = hmac.new(key(WEBHOOK_SECRET), signed, hashlib.sha256).digest()
    headers = {
        "webhook-id": MESSAGE_ID,
        "webhook-timestamp": stamp,
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }
    with pytest.raises(InvalidSignature):
        verify(WEBHOOK_SECRET, headers, BODY, now=NOW)


@pytest.mark.parametrize(
    ("offset", "passes"),
    [
        (-301, False),
        (-300, True),
        (-299, True),
        (0, True),
        (299, True),
        (300, True),
        (301, False),
    ],
)
def test_the_timestamp_tolerance_is_five_minutes_either_way(offset: int, passes: bool) -> None:
    # Signed correctly at the shifted time: only the clock can refuse it.
    timestamp = NOW + offset
    headers = headers_with(
        reference_signature(WEBHOOK_SECRET, MESSAGE_ID, timestamp, BODY), timestamp=timestamp
    )
    if passes:
        assert verify(WEBHOOK_SECRET, headers, BODY, now=NOW) == MESSAGE_ID
    else:
        with pytest.raises(InvalidSignature):
            verify(WEBHOOK_SECRET, headers, BODY, now=NOW)


def test_the_tolerance_is_measured_against_the_clock_by_default() -> None:
    old = int(time.time()) - 301
    headers = sign(WEBHOOK_SECRET, MESSAGE_ID, old, BODY)
    with pytest.raises(InvalidSignature):
        verify(WEBHOOK_SECRET, headers, BODY)
    fresh = int(time.time())
    assert verify(WEBHOOK_SECRET, sign(WEBHOOK_SECRET, MESSAGE_ID, fresh, BODY), BODY) == MESSAGE_ID


def test_a_stale_signature_cannot_be_refreshed_by_changing_the_timestamp() -> None:
    # A captured request re-sent later with a fresh timestamp: its signature was over the old.
    old = NOW - 3600
    headers = sign(WEBHOOK_SECRET, MESSAGE_ID, old, BODY)
    headers["webhook-timestamp"] = str(NOW)
    with pytest.raises(InvalidSignature):
        verify(WEBHOOK_SECRET, headers, BODY, now=NOW)


def test_a_secret_that_is_not_base64_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="whsec_"):
        sign("whsec_not base64!", MESSAGE_ID, NOW, BODY)

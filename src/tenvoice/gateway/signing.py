"""Standard Webhooks signatures (https://www.standardwebhooks.com/), both directions.

The signature is HMAC-SHA256 over "{webhook-id}.{webhook-timestamp}.{raw body}" with the
base64 secret after its `whsec_` prefix, sent as `v1,<base64>`; several space-separated
signatures may be sent while a secret is being rotated, and any one valid is enough.
"""

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping

from tenvoice.platform.errors import Unauthorized

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, no secret)
# A signed request older or newer than this is refused, so a captured one cannot be
# replayed later (API.md: 5 minutes).
TOLERANCE_SECONDS = 5 * 60


class InvalidSignature(Unauthorized):
    code = "invalid_signature"
    title = "Invalid webhook signature"


def secret_key(secret: str) -> bytes:
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the webhook secret must be whsec_ followed by base64") from None


def signature(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three headers of a signed webhook."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + signature(secret_key(secret), message_id, timestamp, body),
    }


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: float | None = None) -> str:
    """The webhook's id if its signature and timestamp hold; else InvalidSignature."""
    message_id = headers.get("webhook-id", "")
    stamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not (message_id and stamp and signatures):
        raise InvalidSignature(
            "The webhook-id, webhook-timestamp and webhook-signature headers are required."
        )
    if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
        raise InvalidSignature("webhook-timestamp must be Unix seconds.")
    timestamp = int(stamp)
    if abs((time.time() if now is None else now) - timestamp) > TOLERANCE_SECONDS:
        raise InvalidSignature("The webhook timestamp is more than 5 minutes off.")
    expected = signature(secret_key(secret), message_id, timestamp, body).encode()
    matched = False
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        # Every candidate is compared, in constant time each, so timing tells nothing.
        if version == "v1" and hmac.compare_digest(value.encode(), expected):
            matched = True
    if not matched:
        raise InvalidSignature("No webhook signature matches.")
    return message_id

"""Webhook signing secrets: shown once, kept encrypted, decrypted only to sign.

Unlike API keys they cannot be hashed (the service must sign with them), so each is sealed
with AES-256-GCM under a subkey of TENVOICE_SECRETS_KEY. The endpoint's tenant and id are
the associated data: a ciphertext copied onto another endpoint's row does not open.
"""

import base64
import os
import secrets
import uuid

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tenvoice.gateway.signing import SECRET_PREFIX
from tenvoice.platform.tokens import subkey

_VERSION = "v1"
_NONCE_BYTES = 12


def new_secret() -> str:
    """`whsec_` and 32 random bytes in base64, as Standard Webhooks receivers expect."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


class SecretBox:
    def __init__(self, secrets_key: str) -> None:
        self._aead = AESGCM(subkey(secrets_key, "webhook endpoint secrets"))

    def seal(self, secret: str, tenant_id: uuid.UUID, endpoint_id: uuid.UUID) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, secret.encode(), _bound_to(tenant_id, endpoint_id))
        return f"{_VERSION}:{base64.b64encode(nonce + sealed).decode()}"

    def open(self, stored: str, tenant_id: uuid.UUID, endpoint_id: uuid.UUID) -> str:
        version, _, encoded = stored.partition(":")
        if version != _VERSION:
            raise ValueError(f"unknown secret format {version!r}")
        raw = base64.b64decode(encoded)
        nonce, sealed = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
        return self._aead.decrypt(nonce, sealed, _bound_to(tenant_id, endpoint_id)).decode()


def _bound_to(tenant_id: uuid.UUID, endpoint_id: uuid.UUID) -> bytes:
    return tenant_id.bytes + endpoint_id.bytes

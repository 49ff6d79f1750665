"""Bearer secrets (API keys, public invoice links): stored only as a hash.

A token carries 256 bits, so one SHA-256 protects it at rest: a slow password hash guards
low-entropy secrets and would only slow every lookup here.

Most tokens are minted at random and shown once. A token that must be shown again (an
invoice's public link, on every read of the invoice) is derived instead: an HMAC of what it
names under a key only the server holds, so the database never needs the token itself.
"""

import base64
import hashlib
import hmac
import secrets


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def subkey(secrets_key: str, purpose: str) -> bytes:
    """One key per use of the secrets key, so no two uses can ever be played off each other."""
    return hmac.digest(secrets_key.encode(), b"tenvoice subkey: " + purpose.encode(), "sha256")


class DerivedTokens:
    """Tokens for one purpose: HMAC-SHA256 of a message under that purpose's subkey.

    The key schedule is done once here; each token costs a copy and one more block, which
    keeps a page of 200 invoices, each with its link, cheap.
    """

    __slots__ = ("_mac",)

    def __init__(self, secrets_key: str, purpose: str) -> None:
        self._mac = hmac.new(subkey(secrets_key, purpose), digestmod=hashlib.sha256)

    def token(self, message: bytes) -> str:
        mac = self._mac.copy()
        mac.update(message)
        return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()

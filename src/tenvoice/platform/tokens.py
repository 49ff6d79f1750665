"""Bearer secrets (API keys, public invoice links): minted at random, stored as a hash.

A token carries 256 random bits, so one SHA-256 protects it at rest: a slow password hash
guards low-entropy secrets and would only slow every lookup here.
"""

import hashlib
import secrets


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()

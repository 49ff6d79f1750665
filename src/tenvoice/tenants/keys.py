"""API key material: generation and hashing.

A key carries 256 random bits, so a single SHA-256 is enough to store it safely (a slow
password hash protects low-entropy secrets; it would only slow every request here).
"""

import hashlib
import secrets

KEY_PREFIX = "tv_sk_"
DISPLAY_PREFIX_LENGTH = 12


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key: str) -> str:
    return key[:DISPLAY_PREFIX_LENGTH]

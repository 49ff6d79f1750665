"""API key material: `tv_sk_` and 256 random bits, stored only as its hash."""

from tenvoice.platform.tokens import new_token

KEY_PREFIX = "tv_sk_"
DISPLAY_PREFIX_LENGTH = 12


def generate_key() -> str:
    return KEY_PREFIX + new_token()


def display_prefix(key: str) -> str:
    return key[:DISPLAY_PREFIX_LENGTH]

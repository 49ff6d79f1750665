"""`tenvoice doctor`: one screen an operator reads before (or instead of) a support ticket.

The version, every setting as the service sees it (secrets masked: a fixed, public
prefix at most, never any of the secret itself), then one line per check, `ok`, `warn`
or `fail` with its reason. The exit status is 1 when any check fails.
"""

import re
from collections.abc import Sequence
from typing import Any

from tenvoice import __version__
from tenvoice.config import Settings, sqlite_path
from tenvoice.platform import doctor_checks
from tenvoice.platform.doctor_checks import FAIL, Check
from tenvoice.platform.preflight import masked

# The embedded set-up generates these once and keeps them beside the SQLite file.
EMBEDDED = frozenset({"admin_key", "gateway_webhook_secret", "secrets_key"})
SECRETS = EMBEDDED | {"metrics_token"}
URLS = frozenset({"database_url", "migration_database_url", "redis_url"})
# Markers the service itself puts in front of what it generates: they say which kind of
# secret is set and carry none of its randomness.
_PUBLIC_PREFIXES = ("tv_admin_", "whsec_")
_USERINFO_PASSWORD = re.compile(r"(://[^/@]*):[^/@]*@")


def run(settings: Settings) -> int:
    print(f"tenvoice {__version__}")
    print("\nconfiguration:")
    for line in configuration(settings):
        print(f"  {line}")
    checks = doctor_checks.run_all(settings)
    print("\nchecks:")
    for line in report(checks):
        print(f"  {line}")
    return 1 if any(check.level == FAIL for check in checks) else 0


def configuration(settings: Settings) -> list[str]:
    names = list(type(settings).model_fields)
    width = max(len(name) for name in names) + len("TENVOICE_")
    return [
        f"{'TENVOICE_' + name.upper():{width}}  {shown(name, getattr(settings, name), settings)}"
        for name in names
    ]


def shown(name: str, value: Any, settings: Settings) -> str:
    if value is None:
        if name in EMBEDDED and _kept_beside_database(settings):
            return "(unset: generated and kept beside the SQLite database)"
        return "(unset)"
    if name in SECRETS:
        return mask_secret(str(value))
    if name in URLS:
        return mask_url(str(value))
    if isinstance(value, tuple):
        return ",".join(f"{part:g}" if isinstance(part, float) else str(part) for part in value)
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def mask_secret(value: str) -> str:
    prefix = next((p for p in _PUBLIC_PREFIXES if value.startswith(p)), "")
    return f"{prefix}…(set)" if prefix else "****(set)"


def mask_url(url: str) -> str:
    """A URL with any password replaced (user:password@ and ?password=)."""
    return masked(_USERINFO_PASSWORD.sub(r"\1:***@", url))


def report(checks: Sequence[Check]) -> list[str]:
    width = max(len(check.name) for check in checks)
    return [f"{check.level:4}  {check.name:{width}}  {check.reason}" for check in checks]


def _kept_beside_database(settings: Settings) -> bool:
    path = sqlite_path(settings.database_url)
    return path is not None and path.with_name(path.name + ".secrets.json").exists()

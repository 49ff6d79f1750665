"""Settings the service cannot start without, and the embedded set-up that needs none."""

import json
from pathlib import Path

import pytest

from tenvoice.config import Settings, SettingsError, ensure_embedded_secrets, require_secrets_key


def test_an_existing_embedded_set_up_gains_a_secrets_key_and_keeps_it(tmp_path: Path) -> None:
    secrets_file = tmp_path / "tenvoice.db.secrets.json"
    # As kept before the secrets key existed.
    secrets_file.write_text(json.dumps({"admin_key": "tv_admin_x", "gateway_webhook_secret": "w"}))
    url = f"sqlite:///{tmp_path / 'tenvoice.db'}"

    first, again = Settings(database_url=url), Settings(database_url=url)
    ensure_embedded_secrets(first)
    ensure_embedded_secrets(again)

    assert first.admin_key == "tv_admin_x"
    assert first.secrets_key is not None
    assert require_secrets_key(first.secrets_key) == again.secrets_key
    assert json.loads(secrets_file.read_text())["secrets_key"] == first.secrets_key


def test_postgresql_gets_no_generated_secrets_key() -> None:
    settings = Settings(database_url="postgresql://app@db/tenvoice")
    settings.secrets_key = None  # whatever the environment running the tests holds
    assert ensure_embedded_secrets(settings) == []
    with pytest.raises(SettingsError, match=r"^TENVOICE_SECRETS_KEY is not set: generate one"):
        require_secrets_key(settings.secrets_key)


def test_a_short_secrets_key_is_refused() -> None:
    with pytest.raises(SettingsError, match="too short"):
        require_secrets_key("short")
    assert require_secrets_key("k" * 32) == "k" * 32

"""Settings (`paymod.config`): the TOML file, the environment, and errors that say where.

Moved from tests/e2e/test_service.py: they need no app and no database."""

from __future__ import annotations

from pathlib import Path

import pytest

from paymod.config import ConfigError, load_settings


def test_settings_from_a_toml_file_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "paymod.toml"
    config.write_text(
        'database_url = "sqlite:///from-file.db"\n'
        '[[providers]]\nresolve = "stripe"\nid = "stripe"\noptions = { capture = false }\n'
        '[[regions]]\nid = "reg_eu"\nproviders = ["pp_system_default", "pp_stripe_stripe"]\n'
        "[webhooks]\ndelay = 0\nretries = 0\n"
        "[worker]\nenabled = false\npoll_interval = 0.5\n"
    )
    for name in ("PAYMOD_DATABASE_URL", "PAYMOD_ADMIN_API_KEY", "PAYMOD_PUBLISHABLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PAYMOD_CONFIG", str(config))
    monkeypatch.setenv("PAYMOD_PROVIDERS__STRIPE__API_KEY", "sk_test_123")
    monkeypatch.setenv("PAYMOD_ADMIN_API_KEY", "sk_env")

    settings = load_settings()

    assert settings.database_url == "sqlite:///from-file.db"
    assert settings.provider_configs() == [
        {"resolve": "stripe", "id": "stripe", "options": {"capture": False, "api_key": "sk_test_123"}}
    ]
    assert [(r.id, r.providers) for r in settings.regions] == [
        ("reg_eu", ["pp_system_default", "pp_stripe_stripe"])
    ]
    assert settings.module_options() == {"webhook_delay": 0.0, "webhook_retries": 0}
    assert (settings.worker.enabled, settings.worker.poll_interval, settings.worker.batch) == (False, 0.5, 20)
    assert settings.admin_api_key is not None and settings.admin_api_key.get_secret_value() == "sk_env"
    assert "sk_env" not in repr(settings)

    monkeypatch.setenv("PAYMOD_DATABASE_URL", "sqlite:///from-env.db")
    assert load_settings().database_url == "sqlite:///from-env.db"


def test_settings_errors_say_where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "paymod.toml"
    config.write_text("[[providers]]\nresolve = 'testing'\n[surprise]\n")
    monkeypatch.setenv("PAYMOD_CONFIG", str(config))
    with pytest.raises(ConfigError, match="surprise"):
        load_settings()

    config.write_text("[[providers]]\nresolve = 'testing'\n")
    monkeypatch.setenv("PAYMOD_PROVIDERS__STRIPE__API_KEY", "x")
    with pytest.raises(ConfigError, match="stripe"):
        load_settings()

    monkeypatch.delenv("PAYMOD_PROVIDERS__STRIPE__API_KEY")
    config.write_text("[webhooks]\ndelay = -1\n")
    with pytest.raises(ConfigError, match="delay"):
        load_settings()

    config.write_text("[worker]\npoll_interval = 0\n")
    with pytest.raises(ConfigError, match="poll_interval"):
        load_settings()

    monkeypatch.setenv("PAYMOD_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="no such file"):
        load_settings()


def test_the_example_configuration_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    example = Path(__file__).parents[2] / "examples" / "paymod.toml"
    monkeypatch.setenv("PAYMOD_CONFIG", str(example))

    settings = load_settings()

    assert [p.resolve for p in settings.providers] == ["testing"]
    assert settings.regions[0].providers == ["pp_system_default", "pp_testing_default"]

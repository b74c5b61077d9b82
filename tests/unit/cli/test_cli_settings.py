"""The settings every `paymod` command reads: ./paymod.toml by default, local keys, amounts as printed."""

from __future__ import annotations

import os
import tomllib
from decimal import Decimal
from pathlib import Path

import pytest

from paymod.cli.payments import money
from paymod.config import ConfigError, Settings, load_settings, write_local_config

EXAMPLE = Path(__file__).parents[3] / "examples" / "paymod.toml"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No PAYMOD_* variable, in an empty working directory."""
    for name in list(os.environ):
        if name.upper().startswith("PAYMOD_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def _local_file(text: str = "") -> Path:
    path = Path("paymod.toml")
    path.write_text('admin_api_key = "sk_file"\npublishable_api_key = "pk_file"\n' + text)
    return path


def test_paymod_toml_in_the_working_directory_is_read_when_PAYMOD_CONFIG_is_unset(
    clean_env: pytest.MonkeyPatch,
) -> None:
    _local_file('[[providers]]\nresolve = "testing"\nid = "default"\n[webhooks]\ndelay = 0\n')

    settings = load_settings()

    assert settings.config == Path("paymod.toml")
    assert [p.resolve for p in settings.providers] == ["testing"]
    assert settings.webhooks.delay == 0
    assert settings.admin_api_key is not None and settings.admin_api_key.get_secret_value() == "sk_file"
    assert settings.publishable_api_key is not None
    assert settings.publishable_api_key.get_secret_value() == "pk_file"


def test_without_paymod_toml_nothing_is_read(clean_env: pytest.MonkeyPatch) -> None:
    settings = load_settings()

    assert (settings.config, settings.providers, settings.admin_api_key) == (None, [], None)


def test_PAYMOD_CONFIG_wins_and_an_empty_one_reads_no_file(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _local_file()
    other = tmp_path / "elsewhere.toml"
    other.write_text('[[providers]]\nresolve = "testing"\n')

    clean_env.setenv("PAYMOD_CONFIG", str(other))
    chosen = load_settings()
    clean_env.setenv("PAYMOD_CONFIG", "")
    empty = load_settings()

    assert (chosen.config, [p.resolve for p in chosen.providers], chosen.admin_api_key) == (
        other,
        ["testing"],
        None,
    )
    assert (empty.config, empty.admin_api_key) == (None, None)


def test_settings_built_in_code_with_config_none_ignore_paymod_toml(clean_env: pytest.MonkeyPatch) -> None:
    _local_file("[webhooks]\ndelay = 0\n")

    settings = Settings(config=None)

    assert (settings.admin_api_key, settings.webhooks.delay) == (None, 5.0)


def test_environment_variables_win_over_the_files_keys(clean_env: pytest.MonkeyPatch) -> None:
    _local_file()
    clean_env.setenv("PAYMOD_ADMIN_API_KEY", "sk_env")

    settings = load_settings()

    assert settings.admin_api_key is not None and settings.admin_api_key.get_secret_value() == "sk_env"
    assert settings.publishable_api_key is not None
    assert settings.publishable_api_key.get_secret_value() == "pk_file"


def test_local_config_has_fresh_keys_the_examples_settings_and_is_the_owners_only(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    first = write_local_config(tmp_path / "a.toml", EXAMPLE)
    second = write_local_config(tmp_path / "b.toml", EXAMPLE)

    written = tomllib.loads((tmp_path / "a.toml").read_text())
    assert (written["admin_api_key"], written["publishable_api_key"]) == (first.admin, first.publishable)
    assert first.admin.startswith("sk_dev_") and first.publishable.startswith("pk_dev_")
    assert {first.admin, first.publishable}.isdisjoint({second.admin, second.publishable})
    assert written["providers"] == tomllib.loads(EXAMPLE.read_text())["providers"]
    assert (tmp_path / "a.toml").stat().st_mode & 0o777 == 0o600
    clean_env.setenv("PAYMOD_CONFIG", str(tmp_path / "a.toml"))
    loaded = load_settings()
    assert loaded.admin_api_key is not None and loaded.admin_api_key.get_secret_value() == first.admin


def test_local_config_never_overwrites_and_refuses_an_example_with_keys(tmp_path: Path) -> None:
    target = tmp_path / "paymod.toml"
    target.write_text("# mine\n")
    keyed = tmp_path / "keyed.toml"
    keyed.write_text('admin_api_key = "sk_x"\n')

    with pytest.raises(ConfigError, match="already exists"):
        write_local_config(target, EXAMPLE)
    with pytest.raises(ConfigError, match="already sets admin_api_key"):
        write_local_config(tmp_path / "new.toml", keyed)

    assert target.read_text() == "# mine\n"
    assert not (tmp_path / "new.toml").exists()


@pytest.mark.parametrize(
    ("amount", "currency", "printed"),
    [
        ("10", "usd", "10.00"),
        ("2.5", "usd", "2.50"),
        ("10.0", "usd", "10.00"),
        ("0", "usd", "0.00"),
        ("49.90", "eur", "49.90"),
        ("1000", "jpy", "1000"),
        ("1.5", "kwd", "1.500"),
        ("0.125", "usd", "0.125"),  # more digits than the currency has are shown, not rounded away
        ("1E+3", "usd", "1000.00"),
    ],
)
def test_amounts_are_printed_at_their_currencys_precision(amount: str, currency: str, printed: str) -> None:
    assert money(Decimal(amount), currency) == printed

"""Rail config: values from the environment or secret files, and secrets kept out of sight."""

from __future__ import annotations

from pathlib import Path

import pytest
import stripe

from connectors.rails.base import TransientRailError
from connectors.rails.config import RailConfig
from connectors.rails.providers.stripe import StripeRail, classify
from streams.domain.errors import ConfigError
from tests.fixtures.kafka import free_ports
from tests.fixtures.rails.invoices import sample_invoice

KEY = "sk_live_51HvTopSecretValue0123456789"


def test_values_come_from_rail_prefixed_variables() -> None:
    config = RailConfig.from_env(
        "stripe", {"RAILYARD_RAIL_STRIPE_API_BASE": "http://x", "RAILYARD_RAIL_PAYPAL_X": "no"}
    )
    assert config.values == {"api_base": "http://x"}


def test_a_secret_file_wins_over_the_variable(tmp_path: Path) -> None:
    secret = tmp_path / "stripe_key"
    secret.write_text(KEY + "\n")
    config = RailConfig.from_env(
        "stripe",
        {
            "RAILYARD_RAIL_STRIPE_API_KEY": "sk_test_other",
            "RAILYARD_RAIL_STRIPE_API_KEY_FILE": str(secret),
        },
    )
    assert config.secret("api_key").get_secret_value() == KEY


def test_an_unreadable_secret_file_names_the_variable_not_the_content(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        RailConfig.from_env("stripe", {"RAILYARD_RAIL_STRIPE_API_KEY_FILE": str(tmp_path / "nope")})
    assert "RAILYARD_RAIL_STRIPE_API_KEY_FILE" in str(err.value)


def test_repr_and_str_show_key_names_only() -> None:
    config = RailConfig("stripe", {"api_key": KEY, "api_base": "http://127.0.0.1:1"})
    for text in (repr(config), str(config), f"{config}", repr([config])):
        assert KEY not in text
        assert "api_key" in text


def test_a_secret_stays_masked_until_unwrapped() -> None:
    config = RailConfig("stripe", {"api_key": KEY, "api_base": "http://x"})

    secret = config.secret("api_key")
    assert KEY not in repr(secret) and KEY not in str(secret) and KEY not in f"{[secret]}"
    assert secret.get_secret_value() == KEY
    assert config.optional_secret("api_key") == secret
    assert config.optional_secret("access_token") is None


def test_a_missing_setting_names_both_variables() -> None:
    with pytest.raises(ConfigError) as err:
        RailConfig("stripe", {}).secret("api_key")
    assert "RAILYARD_RAIL_STRIPE_API_KEY" in str(err.value)
    assert "RAILYARD_RAIL_STRIPE_API_KEY_FILE" in str(err.value)


def test_redact_masks_secret_looking_values_only() -> None:
    config = RailConfig(
        "webhook",
        {
            "secret": "whsec_abcdef",
            "url": "http://hooks.example/x",
            "client_password": "pw-123456",
            "timeout": "10",
        },
    )
    text = "POST http://hooks.example/x with whsec_abcdef and pw-123456 after 10s"
    assert config.redact(text) == "POST http://hooks.example/x with *** and *** after 10s"


def test_to_env_round_trips() -> None:
    config = RailConfig("stripe", {"api_key": KEY, "api_base": "http://x"})
    assert RailConfig.from_env("stripe", config.to_env()) == config


def test_stripe_errors_never_carry_the_api_key() -> None:
    (port,) = free_ports(1)  # nothing listens there: a connection error
    rail = StripeRail(
        RailConfig("stripe", {"api_key": KEY, "api_base": f"http://127.0.0.1:{port}"})
    )
    with pytest.raises(TransientRailError) as err:
        rail.deliver(sample_invoice(1, "stripe"))
    assert KEY not in str(err.value) and KEY not in repr(err.value)
    assert err.value.__cause__ is None and err.value.__suppress_context__
    answer = {
        "error": {
            "type": "invalid_request_error",
            "message": f"Invalid API Key provided: {KEY[:12]}****",
        }
    }
    refused = classify(
        stripe.AuthenticationError(answer["error"]["message"], json_body=answer, http_status=401)
    )
    assert KEY not in str(refused)

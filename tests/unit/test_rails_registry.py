"""The rail registry: every provider module registers its rail, and every rail has a peer."""

from __future__ import annotations

import pytest

from connectors.rails import registry
from connectors.rails.sandbox import peer_names
from streams.domain.errors import ConfigError


def test_every_provider_module_registers_the_rail_it_is_named_after() -> None:
    """No deny-list: a helper put in ``providers`` (registering nothing) fails here."""
    names = {module.rsplit(".", 1)[-1] for module in registry.rail_modules()}
    assert set(registry.rails()) == names


def test_every_rail_has_a_peer_so_the_runner_tests_cover_it() -> None:
    assert set(registry.rails()) == set(peer_names())


def test_an_unknown_rail_names_the_known_ones() -> None:
    with pytest.raises(ConfigError) as err:
        registry.create("carrier-pigeon")
    assert "stripe" in str(err.value) and "webhook" in str(err.value)


def test_registering_another_factory_under_a_taken_name_fails() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("stripe")(lambda config: None)  # type: ignore[arg-type,return-value]

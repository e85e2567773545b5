"""The config's defaults have one source, the dataclass: a key left out of the Flask config
reads as its field's default."""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any

import pytest

from flask_paxpar_checkout.config import CheckoutConfig
from flask_paxpar_checkout.errors import ConfigurationError

REQUIRED = {"PAXPAR_FQDN": "dev.paxpar.tech", "STRIPE_WEBHOOK_SECRET": "whsec_defaults"}
DERIVED = {"public_url"}  # from the host name when not given
DEFAULTED = [f for f in fields(CheckoutConfig) if f.default is not MISSING]


def test_every_field_but_the_host_name_has_a_default() -> None:
    assert [f.name for f in fields(CheckoutConfig) if f.default is MISSING] == ["fqdn"]
    assert len(DEFAULTED) == len(fields(CheckoutConfig)) - 1


@pytest.mark.parametrize("field", DEFAULTED, ids=lambda f: f.name)
def test_a_key_left_out_reads_as_the_dataclass_default(field: Any) -> None:
    config = CheckoutConfig.from_mapping(REQUIRED)
    if field.name in DERIVED:
        assert config.public_url == "https://dev.paxpar.tech"
    elif field.name == "webhook_secrets":  # required: there is no usable default
        assert config.webhook_secrets == ("whsec_defaults",)
    else:
        assert getattr(config, field.name) == field.default


def test_a_required_key_left_out_is_refused_with_its_name() -> None:
    with pytest.raises(ConfigurationError, match="STRIPE_WEBHOOK_SECRET is required"):
        CheckoutConfig.from_mapping({"PAXPAR_FQDN": "dev.paxpar.tech"})
    with pytest.raises(ConfigurationError, match="PAXPAR_FQDN is required"):
        CheckoutConfig.from_mapping({"STRIPE_WEBHOOK_SECRET": "whsec_defaults"})

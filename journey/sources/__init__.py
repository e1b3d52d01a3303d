"""Store and CRM connectors: one module per API, all behind `journey.sources.base.Connector`.

To add a connector, write journey/sources/<kind>.py with one Connector subclass
and add one line to CONNECTORS below (imported lazily, so a connector's
module is loaded only when a source of its kind is used).
"""

from __future__ import annotations

from importlib import import_module

from journey.errors import JourneyError
from journey.sources.base import Connector

CONNECTORS: dict[str, str] = {
    "stripe": "journey.sources.stripe:StripeConnector",
    "hubspot": "journey.sources.hubspot:HubSpotConnector",
    "woocommerce": "journey.sources.woocommerce:WooCommerceConnector",
    "shopify": "journey.sources.shopify:ShopifyConnector",
}


def connector_class(kind: str) -> type[Connector]:
    try:
        target = CONNECTORS[kind]
    except KeyError:
        raise JourneyError(
            f"There is no connector for {kind!r}; available: {', '.join(sorted(CONNECTORS))}."
        ) from None
    module, _, name = target.partition(":")
    cls: type[Connector] = getattr(import_module(module), name)
    return cls

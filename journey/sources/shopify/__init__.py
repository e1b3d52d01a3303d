"""The Shopify connector (Admin GraphQL API): a small package.

- connector.py: `ShopifyConnector` (requests, paging, the first-sync choice);
- queries.py: every GraphQL document it sends (validated against Shopify's schema by the tests);
- mapping.py: what each Shopify record becomes in the store;
- answers.py: query cost, throttling and errors in plain words;
- bulk.py: the bulk operation of a large first sync, resumable by JSONL line.
"""

from journey.sources.shopify.connector import DEFAULT_API_VERSION, ShopifyConnector, shop_domain

__all__ = ["DEFAULT_API_VERSION", "ShopifyConnector", "shop_domain"]

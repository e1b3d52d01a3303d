"""Every GraphQL document the Shopify connector sends, in one place.

Kept together so tests/test_shopify_queries.py can validate each of them
against Shopify's real Admin schema (and reject deprecated fields), and so the
paged and the bulk reads of a resource select exactly the same fields: a record
read through a bulk operation maps to the same store rows as one read through
a page.

The selections are plain text (no fragments) because a bulk query is one
string handed to Shopify inside a mutation and Shopify's JSONL has one line per
node of the root connection.
"""

from __future__ import annotations

from dataclasses import dataclass

MONEY = "shopMoney { amount currencyCode }"
VISIT = "occurredAt source sourceType utmParameters { source medium campaign content term }"

ORDER_FIELDS = f"""
id
createdAt
updatedAt
processedAt
cancelledAt
test
email
displayFinancialStatus
totalPriceSet {{ {MONEY} }}
customer {{ id }}
refunds {{ id createdAt totalRefundedSet {{ {MONEY} }} }}
customerJourneySummary {{
  ready
  customerOrderIndex
  daysToConversion
  firstVisit {{ {VISIT} }}
  lastVisit {{ {VISIT} }}
}}
"""

CUSTOMER_FIELDS = """
id
createdAt
updatedAt
firstName
lastName
defaultEmailAddress { emailAddress }
defaultPhoneNumber { phoneNumber }
"""

CHECKOUT_FIELDS = f"""
id
createdAt
updatedAt
completedAt
customer {{ id }}
totalPriceSet {{ {MONEY} }}
"""


@dataclass(frozen=True)
class ListQuery:
    """How one resource is listed: its root field, sort key, fields and count field."""

    root: str
    sort_key: str
    fields: str
    count_root: str

    def page(self) -> str:
        """One page, filtered by Shopify's search syntax (`query`) and stepped by `after`."""
        name = self.root[0].upper() + self.root[1:]
        return (
            f"query Journey{name}Page($first: Int!, $after: String, $query: String) {{\n"
            f"  {self.root}(first: $first, after: $after, query: $query, "
            f"sortKey: {self.sort_key}) {{\n"
            "    pageInfo { hasNextPage endCursor }\n"
            f"    nodes {{{self.fields}}}\n"
            "  }\n"
            "}\n"
        )

    def bulk(self) -> str:
        """The whole list, for bulkOperationRunQuery (no paging arguments: Shopify streams it)."""
        return (
            f"{{\n  {self.root} {{\n    edges {{\n      node {{{self.fields}}}\n    }}\n  }}\n}}\n"
        )

    def count(self) -> str:
        name = self.count_root[0].upper() + self.count_root[1:]
        return (
            f"query Journey{name}($limit: Int) {{\n"
            f"  {self.count_root}(limit: $limit) {{ count precision }}\n"
            "}\n"
        )


ORDERS = ListQuery("orders", "UPDATED_AT", ORDER_FIELDS, "ordersCount")
CUSTOMERS = ListQuery("customers", "UPDATED_AT", CUSTOMER_FIELDS, "customersCount")
# Abandoned checkouts have no UPDATED_AT sort key: they are listed by id, filtered on updated_at.
CHECKOUTS = ListQuery("abandonedCheckouts", "ID", CHECKOUT_FIELDS, "abandonedCheckoutsCount")
LISTS = {"customers": CUSTOMERS, "orders": ORDERS, "abandoned_checkouts": CHECKOUTS}

# Orders whose journey Shopify had not attributed yet when they were read, asked again by id
# (Shopify may attribute a visit after the order is placed without a new updatedAt).
ATTRIBUTION = f"""
query JourneyLateAttribution($ids: [ID!]!) {{
  nodes(ids: $ids) {{
    ... on Order {{{ORDER_FIELDS}}}
  }}
}}
"""

CHECK = """
query JourneyCheck {
  shop { name myshopifyDomain }
  currentAppInstallation { accessScopes { handle } }
}
"""

BULK_RUN = """
mutation JourneyBulkRun($query: String!) {
  bulkOperationRunQuery(query: $query, groupObjects: false) {
    bulkOperation { id status createdAt }
    userErrors { field message code }
  }
}
"""

BULK_STATUS = """
query JourneyBulkStatus($id: ID!) {
  bulkOperation(id: $id) {
    id
    status
    errorCode
    createdAt
    completedAt
    objectCount
    rootObjectCount
    url
    partialDataUrl
  }
}
"""


def all_documents() -> dict[str, str]:
    """Every document the connector can send, by a name for test ids.

    Bulk queries are sent as a string argument, so they appear here on their own
    (validated as the query document Shopify will run) as well as inside BULK_RUN.
    """
    docs = {
        "check": CHECK,
        "bulk_run": BULK_RUN,
        "bulk_status": BULK_STATUS,
        "late_attribution": ATTRIBUTION,
    }
    for name, query in LISTS.items():
        docs[f"{name}_page"] = query.page()
        docs[f"{name}_bulk"] = query.bulk()
        docs[f"{name}_count"] = query.count()
    return docs

"""Every GraphQL document the Shopify connector can send is valid against Shopify's real
Admin schema (tests/fakes/shopify_schema.py), and uses no deprecated field.

Skipped, with the reason, when the schema cannot be downloaded.
"""

from __future__ import annotations

import pytest
from graphql import parse, specified_rules, validate
from graphql.validation import NoDeprecatedCustomRule

from journey.sources.shopify.queries import BULK_RUN, all_documents
from tests.fakes.shopify_schema import API_VERSION, schema_or_skip

DOCUMENTS = all_documents()


def errors(document: str) -> list[str]:
    schema = schema_or_skip()
    rules = [*specified_rules, NoDeprecatedCustomRule]
    return [e.message for e in validate(schema, parse(document), rules)]


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_every_query_is_valid_against_the_admin_schema(name):
    assert errors(DOCUMENTS[name]) == []


def test_the_check_catches_what_shopify_would_reject():
    # the check itself can fail: a misspelt field, a deprecated one, a wrong argument type
    assert errors("{ orders(first: 1) { nodes { financialStatus } } }") == [
        "Cannot query field 'financialStatus' on type 'Order'. "
        "Did you mean 'displayFinancialStatus'?"
    ]
    assert any("deprecated" in e for e in errors("{ customers(first: 1) { nodes { email } } }"))
    assert errors('{ orders(first: "ten") { nodes { id } } }')


def test_the_connector_speaks_the_pinned_api_version():
    from journey.sources.shopify import DEFAULT_API_VERSION

    assert DEFAULT_API_VERSION == API_VERSION
    assert "groupObjects: false" in BULK_RUN

"""Shopify's real Admin GraphQL schema, for the query-validation tests and the fake Shopify.

Shopify publishes its Admin schema as introspection JSON inside the npm package
`@shopify/dev-mcp` (`dist/data/admin_<version>.json.gz`). The tests validate
every query the connector can send against it, and the fake Shopify validates
each incoming query the same way, so a misspelt field fails here exactly as it
would against Shopify instead of passing against a fake that accepts anything.

The pinned tarball is downloaded once from the npm registry, its sha512
integrity is checked (the registry's `dist.integrity`), only the schema file is
extracted, and it is cached under ~/.cache/journey/ (or JOURNEY_CACHE_DIR);
nothing of it is committed. When it cannot be had (no network), `admin_schema()`
raises `SchemaUnavailable` and the `shopify_schema` helpers skip the tests that
need it with the reason, never pass them silently.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import io
import json
import os
import tarfile
import urllib.request
from pathlib import Path
from typing import Any

from graphql import GraphQLSchema, build_client_schema

API_VERSION = "2026-10"
PACKAGE_URL = "https://registry.npmjs.org/@shopify/dev-mcp/-/dev-mcp-1.16.0.tgz"
INTEGRITY = "sha512-tqgRnK7sQhjew+htxtleTH23nXB5fZcsrhWgEkomsorGXvLOB2mh2upwZm8uzuTDNTZnqtLMe64yIwh6s2awtw=="
MEMBER = f"package/dist/data/admin_{API_VERSION}.json.gz"


class SchemaUnavailable(RuntimeError):
    """The schema could not be downloaded or read; the message says why."""


def cache_dir() -> Path:
    root = os.environ.get("JOURNEY_CACHE_DIR")
    return Path(root) if root else Path.home() / ".cache" / "journey"


def schema_path() -> Path:
    return cache_dir() / f"shopify-admin-{API_VERSION}.json.gz"


def _download() -> bytes:
    try:
        with urllib.request.urlopen(PACKAGE_URL, timeout=60) as answer:
            data: bytes = answer.read()
    except OSError as exc:
        raise SchemaUnavailable(
            f"could not download Shopify's Admin schema from {PACKAGE_URL} ({exc})"
        ) from None
    digest = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    if digest != INTEGRITY:
        raise SchemaUnavailable(f"the package at {PACKAGE_URL} does not match its pinned sha512")
    return data


def _fetch() -> Path:
    """The cached schema file, downloading and extracting it on first use."""
    path = schema_path()
    if path.exists():
        return path
    data = _download()
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            member = tar.extractfile(MEMBER)
            if member is None:
                raise KeyError(MEMBER)
            schema = member.read()
    except (KeyError, tarfile.TarError) as exc:
        raise SchemaUnavailable(f"{MEMBER} is not in the pinned package ({exc})") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    partial.write_bytes(schema)
    partial.replace(path)  # atomic: a parallel test run never reads half a file
    return path


@functools.cache
def _introspection() -> dict[str, Any]:
    with gzip.open(_fetch(), "rt", encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    return data["data"]


@functools.cache
def admin_schema() -> GraphQLSchema:
    """Shopify's Admin schema (API_VERSION) as graphql-core objects, loaded once.

    graphql-core's own schema check rejects one of Shopify's deprecation rules
    (a deprecated required argument); validating queries does not depend on
    it, so that check is marked as done with no errors.
    """
    try:
        schema = build_client_schema(_introspection())  # type: ignore[arg-type]
    except SchemaUnavailable:
        raise
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise SchemaUnavailable(f"Shopify's Admin schema could not be read ({exc})") from None
    schema._validation_errors = []  # type: ignore[attr-defined]
    return schema


def schema_or_skip() -> GraphQLSchema:
    """The schema, or skip the calling test with the reason it is missing."""
    import pytest

    try:
        return admin_schema()
    except SchemaUnavailable as exc:
        pytest.skip(f"Shopify's Admin schema is unavailable: {exc}")

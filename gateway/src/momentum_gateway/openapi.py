"""One OpenAPI document for the whole API: the services' documents merged, as the gateway sees them.

Each service's document is fetched from the service, kept for a while, and reused when a
later fetch fails. Only paths the routing table sends to that service are kept, each
operation is marked with the scope the table demands, and component names that two services
use differently are prefixed with the service name.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import re
import time
from typing import Any

import httpx

from momentum_gateway.routing import Rule, match
from momentum_shared.errors import PROBLEM_JSON, InsufficientScope, problem_body
from momentum_shared.openapi import PROBLEM_SCHEMAS, problem_response

logger = logging.getLogger("momentum.gateway.openapi")

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
SCHEME = "bearer"
# What the gateway itself may answer on any proxied route, before or instead of the service.
GATEWAY_STATUSES: dict[int, str] = {
    400: "a malformed request: the path has dot segments or bad escapes, a bad header",
    408: "the request body did not arrive in time (the gateway closes the connection)",
    429: "over the gateway's rate or concurrency limit (Retry-After)",
    431: "the request headers are too large",
    502: "the service failed or broke off its answer",
    503: "the service is unavailable or the gateway is overloaded (Retry-After)",
    504: "the service did not answer in time",
}
_PARAM = re.compile(r"\{[^}/]+\}")


def _sample_path(template: str) -> str:
    """A concrete path for a template, so the routing table can be asked about it."""
    return _PARAM.sub("x", template)


def _rename_refs(node: Any, renames: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                prefix, _, name = value.rpartition("/")
                if prefix == "#/components/schemas" and name in renames:
                    value = f"{prefix}/{renames[name]}"
            out[key] = _rename_refs(value, renames)
        return out
    if isinstance(node, list):
        return [_rename_refs(item, renames) for item in node]
    return node


def merge(
    documents: dict[str, dict[str, Any]],
    table: tuple[Rule, ...],
    *,
    title: str,
    version: str,
    description: str,
) -> dict[str, Any]:
    """Merge per-service documents (``service -> document``) into the gateway's document."""
    schemas_by_name: dict[str, list[tuple[str, Any]]] = {}
    for service, doc in documents.items():
        for name, schema in doc.get("components", {}).get("schemas", {}).items():
            schemas_by_name.setdefault(name, []).append((service, schema))
    clashing = {
        name
        for name, owners in schemas_by_name.items()
        if any(schema != owners[0][1] for _, schema in owners[1:])
    }
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for service, original in documents.items():
        renames = {name: f"{service.capitalize()}{name}" for name in clashing}
        doc = _rename_refs(copy.deepcopy(original), renames)
        for name, schema in doc.get("components", {}).get("schemas", {}).items():
            schemas[renames.get(name, name)] = schema
        for template, item in doc.get("paths", {}).items():
            if not isinstance(item, dict):
                continue
            kept: dict[str, Any] = {}
            for method, operation in item.items():
                if method not in METHODS:
                    kept[method] = operation  # shared parameters and the like
                    continue
                rule = match(method.upper(), _sample_path(template), table)
                if rule is None or rule.service != service:
                    continue  # not reachable through the gateway (health, metrics, …)
                kept[method] = _as_proxied(operation, rule)
            if any(m in kept for m in METHODS):
                paths[template] = kept
    for name, schema in PROBLEM_SCHEMAS.items():
        schemas.setdefault(name, copy.deepcopy(schema))
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {SCHEME: _security_scheme(documents, table)},
        },
    }


def _as_proxied(operation: dict[str, Any], rule: Rule) -> dict[str, Any]:
    """``operation`` as the gateway serves it: its security, and the gateway's own statuses."""
    operation = dict(operation)
    responses = dict(operation.get("responses", {}))
    statuses = dict(GATEWAY_STATUSES)
    if operation.get("requestBody"):
        statuses[413] = "the request body is larger than the gateway proxies"
    if rule.public:
        operation["security"] = []
    else:
        operation["security"] = [{SCHEME: [rule.scope] if rule.scope else []}]
        statuses[401] = "missing, invalid, expired or revoked bearer token"
        if rule.scope:
            statuses[403] = f"the token lacks the scope {rule.scope}"
    for status, description in statuses.items():
        responses.setdefault(str(status), problem_response(status, description))
    if rule.scope and "403" in responses:
        # The example names the scope this route needs, as the real refusal does.
        forbidden = copy.deepcopy(responses["403"])
        refusal = InsufficientScope(rule.scope)
        example = problem_body(403, title=refusal.title, detail=refusal.detail, extra=refusal.extra)
        forbidden.setdefault("content", {}).setdefault(PROBLEM_JSON, {})["example"] = example
        responses["403"] = forbidden
    operation["responses"] = dict(sorted(responses.items()))
    return operation


def _security_scheme(documents: dict[str, dict[str, Any]], table: tuple[Rule, ...]) -> Any:
    """The OAuth2 password flow, with the scopes auth's document declares.

    Auth owns the scopes; while its document is unavailable, the scopes the routing table
    demands are listed without descriptions.
    """
    declared = (
        documents.get("auth", {}).get("components", {}).get("securitySchemes", {}).get(SCHEME)
    )
    if isinstance(declared, dict):
        return copy.deepcopy(declared)
    scopes = {rule.scope: rule.scope for rule in table if rule.scope}
    return {
        "type": "oauth2",
        "description": "RS256 access tokens (RFC 9068) from POST /auth/token",
        "flows": {"password": {"tokenUrl": "/auth/token", "scopes": dict(sorted(scopes.items()))}},
    }


class OpenApiAggregator:
    """Fetches and caches the services' documents; ``document()`` is the merged one."""

    def __init__(
        self,
        upstreams: dict[str, str],
        table: tuple[Rule, ...],
        *,
        ttl: float,
        title: str,
        version: str,
        description: str,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.upstreams = upstreams
        self.table = table
        self.ttl = ttl
        self.title = title
        self.version = version
        self.description = description
        self._client = client or httpx.AsyncClient(timeout=5.0)
        self._owns_client = client is None
        self._documents: dict[str, dict[str, Any]] = {}
        self._fetched_at: float | None = None
        self._merged: dict[str, Any] | None = None
        self._lock = asyncio.Lock()
        self.unavailable: list[str] = []

    async def _fetch(self, service: str, base: str) -> None:
        try:
            response = await self._client.get(f"{base}/openapi.json")
            response.raise_for_status()
            document = response.json()
            if not isinstance(document, dict):
                raise ValueError("not a JSON object")
        except (httpx.HTTPError, ValueError) as exc:
            logger.warning(
                "could not fetch an OpenAPI document",
                extra={"service": service, "error": type(exc).__name__},
            )
            if service not in self._documents:
                self.unavailable.append(service)
            return
        self._documents[service] = document

    async def document(self) -> dict[str, Any]:
        async with self._lock:
            now = time.monotonic()
            fresh = self._fetched_at is not None and now - self._fetched_at < self.ttl
            if self._merged is None or not fresh or self.unavailable:
                self.unavailable = []
                await asyncio.gather(
                    *(self._fetch(name, base) for name, base in self.upstreams.items())
                )
                self._fetched_at = now
                merged = merge(
                    {n: self._documents[n] for n in self.upstreams if n in self._documents},
                    self.table,
                    title=self.title,
                    version=self.version,
                    description=self.description,
                )
                if self.unavailable:
                    merged["info"]["x-unavailable-services"] = sorted(self.unavailable)
                self._merged = merged
            return self._merged

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

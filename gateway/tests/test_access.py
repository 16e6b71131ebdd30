"""Who may pass: public routes, tokens, scopes, the attack matrix over HTTP, rate limits."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI

from gateway.tests.support import internal_get
from momentum_devtools.testing.apps import running_app
from momentum_devtools.testing.issuer import TestIssuer
from momentum_gateway.routing import TABLE, has_dot_segments, match
from momentum_shared.state import shared_state


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value: Any) -> str:
    return b64(json.dumps(value).encode())


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- the routing table --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "service", "requirement"),
    [
        ("POST", "/auth/register", "auth", "public"),
        ("POST", "/auth/token", "auth", "public"),
        ("POST", "/auth/revoke", "auth", "public"),
        ("GET", "/.well-known/jwks.json", "auth", "public"),
        ("GET", "/.well-known/oauth-authorization-server", "auth", "public"),
        ("GET", "/auth/me", "auth", "scope profile"),
        ("PATCH", "/auth/me", "auth", "scope profile"),
        ("POST", "/auth/me/password", "auth", "scope profile"),
        ("POST", "/auth/admin/keys/rotate", "auth", "scope admin"),
        ("GET", "/auth/token", "auth", "a valid token"),
        ("GET", "/auth/anything-new", "auth", "a valid token"),
        ("GET", "/tasks", "tasks", "scope tasks:read"),
        ("GET", "/tasks/1", "tasks", "scope tasks:read"),
        ("HEAD", "/tasks/1", "tasks", "scope tasks:read"),
        ("POST", "/tasks", "tasks", "scope tasks:write"),
        ("PATCH", "/tasks/1", "tasks", "scope tasks:write"),
        ("DELETE", "/tasks/1", "tasks", "scope tasks:write"),
        ("POST", "/tasks/1/complete", "tasks", "scope tasks:write"),
        ("GET", "/analytics/streaks", "analytics", "scope analytics:read"),
        ("GET", "/analytics/reports/weekly", "analytics", "scope analytics:read"),
        ("GET", "/projects", "tasks", "scope tasks:read"),
        ("GET", "/projects/1", "tasks", "scope tasks:read"),
        ("POST", "/projects", "tasks", "scope tasks:write"),
        ("PATCH", "/projects/1", "tasks", "scope tasks:write"),
        ("DELETE", "/projects/1", "tasks", "scope tasks:write"),
        ("POST", "/tasks/batch", "tasks", "scope tasks:write"),
        ("GET", "/tasks/changes", "tasks", "scope tasks:read"),
    ],
)
def test_the_table_names_service_and_requirement(
    method: str, path: str, service: str, requirement: str
) -> None:
    rule = match(method, path)
    assert rule is not None
    assert rule.service == service
    assert rule.requirement() == requirement


@pytest.mark.parametrize(
    "path", ["/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/", "/tasksx", "/authx"]
)
def test_paths_outside_the_table_are_not_proxied(path: str) -> None:
    assert match("GET", path) is None


def test_every_row_is_reachable() -> None:
    # A row shadowed by an earlier one would be dead configuration.
    for rule in TABLE:
        path = rule.prefix + "x" if rule.prefix else rule.pattern
        method = next(iter(sorted(rule.methods))) if rule.methods else "DELETE"
        assert match(method, path) is rule, rule


@pytest.mark.parametrize(
    ("path", "dotted"),
    [
        ("/tasks/1", False),
        ("/.well-known/jwks.json", False),
        ("/tasks/a.b", False),
        ("/auth/register/../me", True),
        ("/auth/me/./x", True),
        ("/tasks/..", True),
        ("/tasks\\..\\auth", True),
    ],
)
def test_dot_segments_are_recognised(path: str, dotted: bool) -> None:
    assert has_dot_segments(path) is dotted


# --- public and protected routes over HTTP ------------------------------------------------


async def test_public_routes_need_no_token(client: httpx.AsyncClient) -> None:
    registered = await client.post("/auth/register", json={"name": "ada"})
    assert registered.status_code == 201
    assert (await client.post("/auth/token", data={"grant_type": "password"})).status_code == 200
    assert (await client.post("/auth/revoke", data={"token": "x"})).status_code == 200
    assert (await client.get("/.well-known/jwks.json")).status_code == 200
    assert (await client.get("/healthz")).status_code == 200


async def test_an_unknown_path_is_a_problem_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/auth/register/%2e%2e/admin/keys/rotate"),
        ("GET", "/auth/register/%2E%2E/me"),
        ("GET", "/tasks/1/%2e%2e/%2e%2e/auth/me"),
        ("GET", "/.well-known/%2e%2e/auth/me"),
        ("GET", "/.well-known/..%2Fauth%2Fme"),
        ("GET", "/tasks/1/%2e/x"),
    ],
)
async def test_dot_segments_never_reach_an_upstream(
    client: httpx.AsyncClient, issuer: TestIssuer, method: str, path: str
) -> None:
    # httpx folds literal ``..`` before sending, so the segments are percent-encoded; the
    # token carries every scope, so only the dot-segment check can stop these requests.
    everything = issuer.bearer(scope="profile tasks:read tasks:write analytics:read admin")
    response = await client.request(method, path, headers=everything)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "service" not in response.json()


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("GET", "/auth/me", "profile"),
        ("POST", "/auth/admin/keys/rotate", "admin"),
        ("GET", "/tasks", "tasks:read"),
        ("GET", "/tasks/1", "tasks:read"),
        ("POST", "/tasks", "tasks:write"),
        ("PATCH", "/tasks/1", "tasks:write"),
        ("DELETE", "/tasks/1", "tasks:write"),
        ("GET", "/analytics/streaks", "analytics:read"),
    ],
)
async def test_each_route_demands_its_scope(
    client: httpx.AsyncClient, issuer: TestIssuer, method: str, path: str, scope: str
) -> None:
    missing = await client.request(method, path, headers=issuer.bearer())
    others = "profile tasks:read tasks:write analytics:read admin".replace(scope, "").split()
    without = await client.request(method, path, headers=issuer.bearer(scope=" ".join(others)))
    assert without.status_code == 403
    assert without.headers["content-type"] == "application/problem+json"
    body = without.json()
    assert body["error"] == "insufficient_scope"
    assert body["scope"] == scope
    challenge = without.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge
    assert f'scope="{scope}"' in challenge
    allowed = await client.request(method, path, headers=issuer.bearer(scope=scope))
    assert allowed.status_code < 400 or allowed.status_code == 422, allowed.text
    if scope == "admin":
        assert missing.status_code == 403  # the default test token has no admin scope


ALL_SCOPES = "profile tasks:read tasks:write analytics:read analytics:write admin"


@pytest.mark.parametrize(
    ("method", "path", "query", "scope"),
    [
        ("GET", "/projects", "archived=any", "tasks:read"),
        ("GET", "/projects/1", "", "tasks:read"),
        ("POST", "/projects", "", "tasks:write"),
        ("PATCH", "/projects/1", "", "tasks:write"),
        ("DELETE", "/projects/1", "", "tasks:write"),
        ("POST", "/tasks/batch", "", "tasks:write"),
        ("GET", "/tasks/changes", "since=abc&limit=5", "tasks:read"),
        ("GET", "/tasks", "search=quarterly+rep&sort=relevance", "tasks:read"),
    ],
)
async def test_projects_batches_changes_and_search_need_their_tasks_scope(
    client: httpx.AsyncClient,
    issuer: TestIssuer,
    method: str,
    path: str,
    query: str,
    scope: str,
) -> None:
    target = f"{path}?{query}" if query else path
    # Every other scope, the other tasks scope included, is not enough: 403 at the gateway.
    others = " ".join(name for name in ALL_SCOPES.split() if name != scope)
    refused = await client.request(method, target, headers=issuer.bearer(scope=others))
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["scope"] == scope
    assert "x-upstream" not in refused.headers
    # With the scope alone the request reaches tasks, path and query unchanged.
    passed = await client.request(method, target, headers=issuer.bearer(scope=scope))
    assert passed.status_code == 200, passed.text
    assert passed.headers["x-upstream"] == "tasks"
    echoed = passed.json()
    assert (echoed["service"], echoed["method"], echoed["path"]) == ("tasks", method, path)
    assert echoed["query"] == query


async def test_no_token_is_401_with_a_bare_challenge(client: httpx.AsyncClient) -> None:
    response = await client.get("/tasks")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "error=" not in response.headers["www-authenticate"]
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_token_in_the_query_string_is_not_accepted(
    client: httpx.AsyncClient, issuer: TestIssuer
) -> None:
    token = issuer.mint()
    response = await client.get("/tasks", params={"access_token": token})
    assert response.status_code == 401
    form = await client.post("/tasks", data={"access_token": token})
    assert form.status_code == 401


async def test_other_schemes_and_double_headers_are_refused(
    client: httpx.AsyncClient, issuer: TestIssuer
) -> None:
    token = issuer.mint()
    assert (await client.get("/tasks", headers={"Authorization": token})).status_code == 401
    basic = {"Authorization": f"Basic {token}"}
    assert (await client.get("/tasks", headers=basic)).status_code == 401
    twice = httpx.Headers(
        [("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")]
    )
    assert (await client.get("/tasks", headers=twice)).status_code == 401
    lower = {"Authorization": f"bearer {token}"}
    assert (await client.get("/tasks", headers=lower)).status_code == 200


# --- the attack matrix over HTTP ----------------------------------------------------------


def attack_tokens(issuer: TestIssuer) -> dict[str, str]:
    now = int(time.time())
    good = issuer.mint()
    h, p, s = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
    escalated = {**claims, "scope": claims["scope"] + " admin"}
    public_pem = issuer.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hs_header = {"alg": "HS256", "typ": "at+jwt", "kid": issuer.kid}
    hs_input = f"{b64json(hs_header)}.{b64json(claims)}".encode()
    hs_token = f"{hs_input.decode()}.{b64(hmac.new(public_pem, hs_input, hashlib.sha256).digest())}"
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def resign(**header: Any) -> str:
        return jwt.encode(
            claims, issuer.private_key, algorithm="RS256", headers={"typ": "at+jwt", **header}
        )

    tokens = {
        "tampered payload": f"{h}.{b64json(escalated)}.{s}",
        "tampered signature": f"{h}.{p}.{s[:-4]}{'AAAA' if s[-4:] != 'AAAA' else 'BBBB'}",
        "no signature": f"{h}.{p}.",
        "hs256 with the public key": hs_token,
        "signed by another key": jwt.encode(
            claims, other_key, algorithm="RS256", headers={"typ": "at+jwt", "kid": issuer.kid}
        ),
        "jku header": resign(kid=issuer.kid, jku="http://127.0.0.1:9/jwks.json"),
        "x5u header": resign(kid=issuer.kid, x5u="http://127.0.0.1:9/cert.pem"),
        "jwk header": resign(kid=issuer.kid, jwk={"kty": "RSA", "n": "AQAB", "e": "AQAB"}),
        "x5c header": resign(kid=issuer.kid, x5c=["MIIB"]),
        "kid path traversal": resign(kid="../../dev/null"),
        "kid sql": resign(kid="' OR 1=1--"),
        "random kid": resign(kid=uuid.uuid4().hex),
        "expired": issuer.mint(iat=now - 2000, exp=now - 120),
        "nbf in the future": issuer.mint(nbf=now + 600),
        "iat in the future": issuer.mint(iat=now + 600, exp=now + 1500),
        "wrong issuer": issuer.mint(iss="http://evil.example"),
        "wrong audience": issuer.mint(aud="another-api"),
        "wrong typ": resign(kid=issuer.kid, typ="JWT"),
        "two segments": f"{h}.{p}",
        "four segments": f"{h}.{p}.{s}.{s}",
        "bad base64": f"{h}.{p}!.{s}",
        "oversized": issuer.mint(padding="x" * 9000),
    }
    for alg in ("none", "None", "NONE", "nOnE"):
        header = {"alg": alg, "typ": "at+jwt", "kid": issuer.kid}
        tokens[f"alg {alg}"] = f"{b64json(header)}.{b64json(escalated)}."
    return tokens


ATTACKS = [
    "tampered payload",
    "tampered signature",
    "no signature",
    "hs256 with the public key",
    "signed by another key",
    "jku header",
    "x5u header",
    "jwk header",
    "x5c header",
    "kid path traversal",
    "kid sql",
    "random kid",
    "expired",
    "nbf in the future",
    "iat in the future",
    "wrong issuer",
    "wrong audience",
    "wrong typ",
    "two segments",
    "four segments",
    "bad base64",
    "oversized",
    "alg none",
    "alg None",
    "alg NONE",
    "alg nOnE",
]


@pytest.fixture(scope="module")
def attacks(issuer: TestIssuer) -> dict[str, str]:
    return attack_tokens(issuer)


@pytest.mark.parametrize("attack", ATTACKS)
async def test_the_attack_matrix_is_401_with_a_challenge(
    client: httpx.AsyncClient, attacks: dict[str, str], attack: str
) -> None:
    response = await client.get("/tasks", headers=auth(attacks[attack]))
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="invalid_token"' in challenge
    assert "service" not in response.json()  # nothing reached an upstream


async def test_a_flood_of_random_kids_is_at_most_one_jwks_fetch(
    client: httpx.AsyncClient, issuer: TestIssuer
) -> None:
    assert (await client.get("/tasks", headers=issuer.bearer())).status_code == 200
    before = issuer.jwks_requests
    for _ in range(200):
        token = jwt.encode(
            {"sub": str(uuid.uuid4())},
            issuer.private_key,
            algorithm="RS256",
            headers={"typ": "at+jwt", "kid": uuid.uuid4().hex},
        )
        assert (await client.get("/tasks", headers=auth(token))).status_code == 401
    assert issuer.jwks_requests - before <= 1


# --- rate limits --------------------------------------------------------------------------


async def test_a_user_over_the_limit_gets_429_with_retry_after(
    app_factory: Callable[..., FastAPI], issuer: TestIssuer
) -> None:
    app = app_factory(rate_limit_user_per_second=0.01, rate_limit_user_burst=3)
    ada, bob = uuid.uuid4(), uuid.uuid4()
    async with running_app(app) as http:
        statuses = [
            (await http.get("/tasks/1", headers=issuer.bearer(ada))).status_code for _ in range(5)
        ]
        assert statuses == [200, 200, 200, 429, 429]
        limited = await http.get("/tasks/1", headers=issuer.bearer(ada))
        assert limited.headers["content-type"] == "application/problem+json"
        assert int(limited.headers["retry-after"]) >= 1
        # Another user (even with a fresh token of the first) has a bucket of their own.
        assert (await http.get("/tasks/1", headers=issuer.bearer(bob))).status_code == 200


async def test_public_auth_routes_are_limited_per_address(
    app_factory: Callable[..., FastAPI], issuer: TestIssuer
) -> None:
    app = app_factory(rate_limit_address_per_second=0.01, rate_limit_address_burst=2)
    async with running_app(app) as http:
        statuses = [
            (await http.post("/auth/token", data={"grant_type": "password"})).status_code
            for _ in range(3)
        ]
        assert statuses == [200, 200, 429]
        for path in ("/auth/token", "/auth/revoke"):
            # The token endpoint's errors carry the RFC 6749 member, and are never stored.
            token_limited = await http.post(path, data={"grant_type": "password"})
            assert token_limited.status_code == 429
            assert token_limited.json()["error"] == "invalid_request"
            assert token_limited.headers["cache-control"] == "no-store"
            assert int(token_limited.headers["retry-after"]) >= 1
        limited = await http.post("/auth/register", json={"name": "x"})
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        # The key set is not an address-limited route.
        assert (await http.get("/.well-known/jwks.json")).status_code == 200


async def test_limits_can_be_switched_off(
    app_factory: Callable[..., FastAPI], issuer: TestIssuer
) -> None:
    app = app_factory(rate_limit_user_per_second=0, rate_limit_user_burst=1)
    user = uuid.uuid4()
    async with running_app(app) as http:
        for _ in range(10):
            assert (await http.get("/tasks/1", headers=issuer.bearer(user))).status_code == 200


def test_token_buckets_refill_and_stay_bounded() -> None:
    from momentum_gateway.ratelimit import TokenBuckets

    now = [0.0]
    buckets = TokenBuckets(2.0, 4, max_keys=100, clock=lambda: now[0])
    assert [buckets.take("a") for _ in range(5)] == [0, 0, 0, 0, 1]
    now[0] += 0.5  # one token back
    assert buckets.take("a") == 0
    assert buckets.take("a") == 1
    for i in range(500):
        buckets.take(f"key-{i}")
        now[0] += 0.001
    assert len(buckets) <= 100


# --- readiness ----------------------------------------------------------------------------


async def test_readiness_waits_for_the_jwks(
    app_factory: Callable[..., FastAPI], issuer: TestIssuer
) -> None:
    app = app_factory(jwks_url="http://127.0.0.1:9/nothing")
    shared_state(app).jwks_client = None  # a real client, towards a port where nothing listens
    async with running_app(app) as http:
        response = await internal_get(http, "/readyz")
        assert response.status_code == 503
        assert "jwks" in response.json()["detail"]
        assert (await http.get("/readyz")).status_code == 503
        assert (await http.get("/healthz")).status_code == 200
    async with running_app(app_factory()) as http:
        import asyncio

        for _ in range(200):
            if (await http.get("/readyz")).status_code == 200:
                break
            await asyncio.sleep(0.01)
        assert (await http.get("/readyz")).status_code == 200


async def test_a_good_token_is_503_while_the_jwks_cannot_be_loaded(
    app_factory: Callable[..., FastAPI], issuer: TestIssuer
) -> None:
    app = app_factory(jwks_url="http://127.0.0.1:9/nothing")
    shared_state(app).jwks_client = None  # a real client, towards a port where nothing listens
    async with running_app(app) as http:
        response = await http.get("/tasks/1", headers=issuer.bearer())
        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert int(response.headers["retry-after"]) >= 1
        assert "www-authenticate" not in response.headers
        assert response.headers["x-request-id"]


async def test_metrics_label_proxied_requests_by_table_pattern(
    client: httpx.AsyncClient, issuer: TestIssuer
) -> None:
    task_id = uuid.uuid4()
    assert (await client.get(f"/tasks/{task_id}", headers=issuer.bearer())).status_code == 200
    assert (await client.get(f"/tasks/{task_id}")).status_code == 401
    text = (await internal_get(client, "/metrics")).text
    assert 'route="/tasks/*"' in text
    assert str(task_id) not in text  # label cardinality stays bounded
    assert 'momentum_gateway_denied_total{reason="unauthenticated"}' in text


# --- operational data stays internal -------------------------------------------------------


async def test_metrics_and_readiness_details_are_served_on_the_internal_port_only(
    app_factory: Callable[..., FastAPI], issuer: TestIssuer, nats_url: str
) -> None:
    app = app_factory(revocation_enabled=True, nats_url=nats_url)
    async with running_app(app) as http:
        assert (await http.get("/tasks/1")).status_code == 401  # a denial to count
        public = await http.get("/metrics")
        assert public.status_code == 404
        assert "momentum_" not in public.text
        for _ in range(200):
            ready = await http.get("/readyz")
            if ready.status_code == 200:
                break
            await asyncio.sleep(0.01)
        assert ready.json() == {"status": "ready"}  # no NATS state, no counts
        internal = await internal_get(http, "/metrics")
        assert internal.status_code == 200
        assert 'momentum_gateway_denied_total{reason="unauthenticated"}' in internal.text
        details = (await internal_get(http, "/readyz")).json()
        assert details["checks"]["jwks"] == {"status": "ok"}
        assert "revoked_sessions" in details["checks"]["revocations"]
        assert (await internal_get(http, "/healthz")).status_code == 200
    # The internal listener stops with the app.
    with pytest.raises(httpx.ConnectError):
        await httpx.AsyncClient().get(str(shared_state(app).internal_url) + "/metrics")


async def test_a_public_readyz_that_is_not_ready_names_nothing(
    app_factory: Callable[..., FastAPI],
) -> None:
    app = app_factory(jwks_url="http://127.0.0.1:9/nothing")
    shared_state(app).jwks_client = None
    async with running_app(app) as http:
        response = await http.get("/readyz")
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert int(response.headers["retry-after"]) >= 1
        assert "checks" not in response.json()
        assert "jwks" not in response.text

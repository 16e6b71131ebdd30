"""The shared token verifier against the attack matrix, over a real JWKS HTTP server."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Annotated, Any

import httpx
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from fastapi import Depends, FastAPI
from hypothesis import given, settings
from hypothesis import strategies as st
from jwt.algorithms import RSAAlgorithm

from momentum_devtools.testing.apps import running_app
from momentum_devtools.testing.issuer import TestIssuer
from momentum_shared.app import build_app
from momentum_shared.security import (
    Claims,
    ClaimsDep,
    InvalidToken,
    JwksCache,
    KeysUnavailable,
    RequireScope,
    TokenVerifier,
)
from momentum_shared.security.verification import MAX_TOKEN_BYTES
from momentum_shared.state import shared_state

ISSUER = "http://127.0.0.1:8000"
AUDIENCE = "momentum-api"


@dataclass
class HttpState:
    """What a tiny real HTTP server answers, and what it was asked."""

    document: Any = None
    status: int = 200
    delay: float = 0.0
    hits: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class RealHttpServer:
    """A real HTTP server on a free port (a JWKS endpoint, or an attacker's key host)."""

    def __init__(self, state: HttpState) -> None:
        self.state = state
        outer = state

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with outer.lock:
                    outer.hits.append(self.path)
                if outer.delay:
                    time.sleep(outer.delay)
                body = json.dumps(outer.document).encode()
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> RealHttpServer:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


class Clock:
    """A clock the test moves by hand (no sleeping, no timing assertions)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def jwks_server(issuer: TestIssuer) -> Iterator[RealHttpServer]:
    with RealHttpServer(HttpState(document=issuer.jwks())) as server:
        yield server


@pytest.fixture
def attacker() -> Iterator[RealHttpServer]:
    with RealHttpServer(HttpState(document={"keys": []})) as server:
        yield server


def make_verifier(
    server: RealHttpServer,
    *,
    jwks_clock: Clock | None = None,
    clock: Clock | None = None,
    ttl: float = 300.0,
) -> TokenVerifier:
    jwks = JwksCache(
        f"{server.url}/.well-known/jwks.json",
        ttl=ttl,
        clock=jwks_clock or time.monotonic,
    )
    return TokenVerifier(
        jwks, issuer=ISSUER, audience=AUDIENCE, leeway=60, clock=clock or time.time
    )


@pytest.fixture
async def verifier(jwks_server: RealHttpServer) -> Any:
    v = make_verifier(jwks_server)
    yield v
    await v.jwks.aclose()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value: Any) -> str:
    return b64(json.dumps(value).encode())


def segments(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")

    def pad(segment: str) -> str:
        return segment + "=" * (-len(segment) % 4)

    return (
        json.loads(base64.urlsafe_b64decode(pad(header))),
        json.loads(base64.urlsafe_b64decode(pad(payload))),
        signature,
    )


def claims_for(issuer: TestIssuer, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": ISSUER,
        "sub": str(uuid.uuid4()),
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 900,
        "jti": str(uuid.uuid4()),
        "client_id": "momentum-test",
        "scope": "profile tasks:read",
        "sid": str(uuid.uuid4()),
        "tz": "Europe/Berlin",
    }
    for name, value in overrides.items():
        if value is None:
            payload.pop(name, None)
        else:
            payload[name] = value
    return payload


def signed(issuer: TestIssuer, payload: dict[str, Any], **header: Any) -> str:
    full = {"typ": "at+jwt", "kid": issuer.kid, **header}
    return jwt.encode(payload, issuer.private_key, algorithm="RS256", headers=full)


def rs256_raw(header: dict[str, Any], payload: dict[str, Any], issuer: TestIssuer) -> str:
    """Sign whatever header we like (PyJWT itself refuses to emit some of them)."""
    signing_input = f"{b64json(header)}.{b64json(payload)}".encode()
    signature = RSAAlgorithm(RSAAlgorithm.SHA256).sign(signing_input, issuer.private_key)
    return f"{signing_input.decode()}.{b64(signature)}"


def hs256(header: dict[str, Any], payload: dict[str, Any], secret: bytes) -> str:
    signing_input = f"{b64json(header)}.{b64json(payload)}".encode()
    signature = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return f"{signing_input.decode()}.{b64(signature)}"


async def refused(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(InvalidToken) as caught:
        await verifier.verify(token)
    return str(caught.value)


# --- what a good token yields -------------------------------------------------------------


async def test_a_valid_token_yields_its_claims(verifier: TokenVerifier, issuer: TestIssuer) -> None:
    user = uuid.uuid4()
    token = issuer.mint(user, scope="profile tasks:read", tz="Europe/Berlin")
    claims = await verifier.verify(token)
    assert claims.sub == str(user)
    assert claims.user_id == user
    assert claims.scopes == frozenset({"profile", "tasks:read"})
    assert claims.has_scope("tasks:read")
    assert not claims.has_scope("tasks:write")
    assert claims.timezone == "Europe/Berlin"
    assert claims.client_id == "momentum-test"
    assert claims.sid is not None
    assert claims.jti is not None


async def test_an_unknown_timezone_claim_reads_as_utc(
    verifier: TokenVerifier, issuer: TestIssuer
) -> None:
    claims = await verifier.verify(issuer.mint(tz="Mars/Olympus_Mons"))
    assert claims.timezone == "UTC"


async def test_application_at_jwt_typ_is_accepted(
    verifier: TokenVerifier, issuer: TestIssuer
) -> None:
    token = signed(issuer, claims_for(issuer), typ="application/at+jwt")
    assert (await verifier.verify(token)).scopes


# --- attack matrix: signatures and algorithms ---------------------------------------------


async def test_a_tampered_payload_is_refused(verifier: TokenVerifier, issuer: TestIssuer) -> None:
    token = issuer.mint(scope="tasks:read")
    header, _payload, signature = token.split(".")
    claims = segments(token)[1]
    claims["scope"] = "tasks:read tasks:write admin"
    await refused(verifier, f"{header}.{b64json(claims)}.{signature}")


async def test_a_tampered_signature_is_refused(verifier: TokenVerifier, issuer: TestIssuer) -> None:
    token = issuer.mint()
    header, payload, signature = token.split(".")
    flipped = ("A" if signature[10] != "A" else "B").join((signature[:10], signature[11:]))
    await refused(verifier, f"{header}.{payload}.{flipped}")
    await refused(verifier, f"{header}.{payload}.")
    await refused(verifier, f"{header}.{payload}")


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
async def test_alg_none_is_refused_in_any_case(
    verifier: TokenVerifier, issuer: TestIssuer, alg: str
) -> None:
    header = {"alg": alg, "typ": "at+jwt", "kid": issuer.kid}
    unsigned = f"{b64json(header)}.{b64json(claims_for(issuer))}"
    await refused(verifier, f"{unsigned}.")
    await refused(verifier, f"{unsigned}.{b64(b'x')}")
    assert verifier.jwks.fetch_count == 0  # refused before any key was looked up


def public_key_forms(issuer: TestIssuer) -> list[bytes]:
    public = issuer.private_key.public_key()
    return [
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1),
        public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        json.dumps(issuer.jwks()["keys"][0]).encode(),
    ]


async def test_hs256_signed_with_the_public_key_is_refused(
    verifier: TokenVerifier, issuer: TestIssuer
) -> None:
    header = {"alg": "HS256", "typ": "at+jwt", "kid": issuer.kid}
    for secret in public_key_forms(issuer):
        message = await refused(verifier, hs256(header, claims_for(issuer), secret))
        assert "algorithm" in message


@pytest.mark.parametrize("secret", [b"", b"secret", b"momentum", b"password"])
async def test_hs256_with_a_guessable_secret_is_refused(
    verifier: TokenVerifier, issuer: TestIssuer, secret: bytes
) -> None:
    header = {"alg": "HS256", "typ": "at+jwt", "kid": issuer.kid}
    await refused(verifier, hs256(header, claims_for(issuer), secret))


async def test_a_key_with_another_algorithm_does_not_verify(
    issuer: TestIssuer,
) -> None:
    # The published key says RS512; a token claiming RS256 with that kid must not pass.
    document = issuer.jwks()
    document["keys"][0]["alg"] = "RS512"
    with RealHttpServer(HttpState(document=document)) as server:
        jwks = JwksCache(f"{server.url}/jwks.json", algorithms=("RS256", "RS512"))
        verifier = TokenVerifier(
            jwks, issuer=ISSUER, audience=AUDIENCE, algorithms=("RS256", "RS512")
        )
        message = await refused(verifier, issuer.mint())
        await jwks.aclose()
    assert "match" in message


async def test_an_encryption_key_never_verifies(issuer: TestIssuer) -> None:
    document = issuer.jwks()
    document["keys"][0]["use"] = "enc"
    with RealHttpServer(HttpState(document=document)) as server:
        jwks = JwksCache(f"{server.url}/jwks.json")
        verifier = TokenVerifier(jwks, issuer=ISSUER, audience=AUDIENCE)
        await refused(verifier, issuer.mint())
        await jwks.aclose()


# --- attack matrix: key-location headers are never fetched --------------------------------


@pytest.fixture(scope="module")
def attacker_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def attacker_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    jwk: dict[str, Any] = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk.update(kid=kid, alg="RS256", use="sig")
    return jwk


def attacker_cert(key: rsa.RSAPrivateKey) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "momentum")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


@pytest.mark.parametrize("kid_choice", ["ours", "theirs"])
@pytest.mark.parametrize("location", ["jwk", "jku", "x5u", "x5c"])
async def test_key_location_headers_are_refused_and_never_fetched(
    verifier: TokenVerifier,
    issuer: TestIssuer,
    attacker: RealHttpServer,
    attacker_key: rsa.RSAPrivateKey,
    location: str,
    kid_choice: str,
) -> None:
    kid = issuer.kid if kid_choice == "ours" else "attacker-key"
    values: dict[str, Any] = {
        "jwk": attacker_jwk(attacker_key, kid),
        "jku": f"{attacker.url}/jwks.json",
        "x5u": f"{attacker.url}/cert.pem",
        "x5c": [attacker_cert(attacker_key)],
    }
    header = {"typ": "at+jwt", "kid": kid, location: values[location]}
    attacker.state.document = {"keys": [attacker_jwk(attacker_key, kid)]}
    token = jwt.encode(claims_for(issuer), attacker_key, algorithm="RS256", headers=header)
    await refused(verifier, token)
    assert attacker.state.hits == []


async def test_a_token_signed_by_another_key_under_our_kid_is_refused(
    verifier: TokenVerifier, issuer: TestIssuer, attacker_key: rsa.RSAPrivateKey
) -> None:
    token = jwt.encode(
        claims_for(issuer),
        attacker_key,
        algorithm="RS256",
        headers={"typ": "at+jwt", "kid": issuer.kid},
    )
    await refused(verifier, token)


@pytest.mark.parametrize(
    "kid",
    [
        "../../dev/null",
        "../../../../etc/passwd",
        "/dev/null",
        "' OR 1=1--",
        "x' UNION SELECT 'key",
        ";id",
        "$(id)",
        "kid\u0000",
        "k" * 200,
        "",
    ],
)
async def test_hostile_kid_values_are_refused_without_a_fetch(
    verifier: TokenVerifier, issuer: TestIssuer, jwks_server: RealHttpServer, kid: str
) -> None:
    token = signed(issuer, claims_for(issuer), kid=kid)
    await refused(verifier, token)
    assert jwks_server.state.hits == []


async def test_a_missing_or_non_string_kid_is_refused(
    verifier: TokenVerifier, issuer: TestIssuer
) -> None:
    no_kid = jwt.encode(
        claims_for(issuer), issuer.private_key, algorithm="RS256", headers={"typ": "at+jwt"}
    )
    await refused(verifier, no_kid)
    header = {"alg": "RS256", "typ": "at+jwt", "kid": 7}
    await refused(verifier, rs256_raw(header, claims_for(issuer), issuer))


async def test_a_flood_of_random_kids_fetches_the_jwks_at_most_once_per_cooldown(
    issuer: TestIssuer, jwks_server: RealHttpServer
) -> None:
    jwks_clock = Clock(1000.0)
    verifier = make_verifier(jwks_server, jwks_clock=jwks_clock)
    await verifier.verify(issuer.mint())  # the start-up fetch
    assert len(jwks_server.state.hits) == 1
    jwks_clock.now += 31  # the cooldown has passed: one refetch is allowed
    for _ in range(300):
        await refused(verifier, signed(issuer, claims_for(issuer), kid=uuid.uuid4().hex))
    assert len(jwks_server.state.hits) == 2
    jwks_clock.now += 10
    for _ in range(100):
        await refused(verifier, signed(issuer, claims_for(issuer), kid=uuid.uuid4().hex))
    assert len(jwks_server.state.hits) == 2
    jwks_clock.now += 21
    await refused(verifier, signed(issuer, claims_for(issuer), kid="yet-another"))
    assert len(jwks_server.state.hits) == 3
    await verifier.jwks.aclose()


async def test_an_announced_kid_refetches_within_the_cooldown_once(
    issuer: TestIssuer, jwks_server: RealHttpServer
) -> None:
    jwks_clock = Clock(1000.0)
    verifier = make_verifier(jwks_server, jwks_clock=jwks_clock)
    await verifier.verify(issuer.mint())  # the start-up fetch
    rotated = TestIssuer(kid="rotated-key")
    jwks_server.state.document = {"keys": issuer.jwks()["keys"] + rotated.jwks()["keys"]}
    # Within the cooldown an unknown kid is refused without a fetch...
    await refused(verifier, signed(issuer, claims_for(issuer), kid=uuid.uuid4().hex))
    assert len(jwks_server.state.hits) == 1
    # ...but the key's owner can announce a kid it starts signing with.
    verifier.jwks.expect("rotated-key")
    user = uuid.uuid4()
    claims = await verifier.verify(rotated.mint(user))
    assert claims.user_id == user
    assert len(jwks_server.state.hits) == 2
    # One refetch per announcement: announcing does not lift the cooldown for other kids.
    verifier.jwks.expect("never-published")
    await refused(verifier, signed(issuer, claims_for(issuer), kid="never-published"))
    await refused(verifier, signed(issuer, claims_for(issuer), kid="never-published"))
    await refused(verifier, signed(issuer, claims_for(issuer), kid=uuid.uuid4().hex))
    assert len(jwks_server.state.hits) == 3
    await verifier.jwks.aclose()


# --- attack matrix: claims ----------------------------------------------------------------


async def test_an_expired_token_is_refused(verifier: TokenVerifier, issuer: TestIssuer) -> None:
    now = int(time.time())
    message = await refused(
        verifier, signed(issuer, claims_for(issuer, iat=now - 1000, exp=now - 61))
    )
    assert "expired" in message


async def test_expiry_within_the_leeway_is_tolerated(
    verifier: TokenVerifier, issuer: TestIssuer
) -> None:
    now = int(time.time())
    assert await verifier.verify(signed(issuer, claims_for(issuer, iat=now - 900, exp=now - 30)))


@pytest.mark.parametrize("missing", ["exp", "iat", "iss", "aud", "sub"])
async def test_required_claims_must_be_present(
    verifier: TokenVerifier, issuer: TestIssuer, missing: str
) -> None:
    await refused(verifier, signed(issuer, claims_for(issuer, **{missing: None})))


async def test_nbf_in_the_future_is_refused(verifier: TokenVerifier, issuer: TestIssuer) -> None:
    now = int(time.time())
    await refused(verifier, signed(issuer, claims_for(issuer, nbf=now + 300)))
    assert await verifier.verify(signed(issuer, claims_for(issuer, nbf=now + 30)))


async def test_iat_in_the_future_is_refused(verifier: TokenVerifier, issuer: TestIssuer) -> None:
    now = int(time.time())
    await refused(verifier, signed(issuer, claims_for(issuer, iat=now + 300, exp=now + 1200)))
    assert await verifier.verify(signed(issuer, claims_for(issuer, iat=now + 30)))


@pytest.mark.parametrize("iss", ["http://evil.example", "http://127.0.0.1:8000/", ""])
async def test_a_wrong_issuer_is_refused(
    verifier: TokenVerifier, issuer: TestIssuer, iss: str
) -> None:
    await refused(verifier, signed(issuer, claims_for(issuer, iss=iss)))


@pytest.mark.parametrize("aud", ["other-api", ["other-api", "more"], [], ""])
async def test_a_wrong_audience_is_refused(
    verifier: TokenVerifier, issuer: TestIssuer, aud: Any
) -> None:
    await refused(verifier, signed(issuer, claims_for(issuer, aud=aud)))


async def test_an_audience_list_with_ours_is_accepted(
    verifier: TokenVerifier, issuer: TestIssuer
) -> None:
    assert await verifier.verify(signed(issuer, claims_for(issuer, aud=["other", AUDIENCE])))


@pytest.mark.parametrize("typ", ["JWT", "jwt", "id+jwt", "refresh+jwt", "at+jwe", 1, None])
async def test_a_token_that_is_not_an_access_token_is_refused(
    verifier: TokenVerifier, issuer: TestIssuer, typ: Any
) -> None:
    header: dict[str, Any] = {"kid": issuer.kid}
    if typ is not None:
        header["typ"] = typ
    token = jwt.encode(claims_for(issuer), issuer.private_key, algorithm="RS256", headers=header)
    if typ is None:  # PyJWT adds typ=JWT by default: strip it entirely
        header_json, rest = token.split(".", 1)
        parsed = segments(token)[0]
        parsed.pop("typ", None)
        token = f"{b64json(parsed)}.{rest}"
        del header_json
    message = await refused(verifier, token)
    assert "typ" in message or "invalid" in message


@pytest.mark.parametrize("sub", ["not-a-uuid", "urn:uuid:6ba7b810-9dad-11d1-80b4-00c04fd430c8", 42])
async def test_a_subject_that_is_not_a_user_id_is_refused(
    verifier: TokenVerifier, issuer: TestIssuer, sub: Any
) -> None:
    await refused(verifier, signed(issuer, claims_for(issuer, sub=sub)))


async def test_a_non_string_scope_is_refused(verifier: TokenVerifier, issuer: TestIssuer) -> None:
    await refused(verifier, signed(issuer, claims_for(issuer, scope=["admin"])))


# --- attack matrix: malformed tokens ------------------------------------------------------


def malformed(issuer: TestIssuer) -> list[str]:
    good = issuer.mint()
    h, p, s = good.split(".")
    return [
        "",
        "abc",
        f"{h}.{p}",
        f"{h}.{p}.{s}.{s}",
        f"{h}.{p}.{s}.{s}.{s}",  # JWE shape
        f"{h}.{p}.{s}!",
        f"{h}==.{p}.{s}",
        f"{b64(b'not json')}.{p}.{s}",
        f"{b64json(['alg', 'RS256'])}.{p}.{s}",
        f"{h}.{b64(b'not json')}.{s}",
        f"{h}.{b64json(['a list'])}.{s}",
        json.dumps({"payload": p, "signatures": [{"protected": h, "signature": s}]}),
        f" {good}",
        good.replace(".", ". ", 1),
        f"{h}.{p}.{s}\u00e9",
    ]


async def test_malformed_tokens_are_refused(verifier: TokenVerifier, issuer: TestIssuer) -> None:
    for token in malformed(issuer):
        await refused(verifier, token)


async def test_unknown_critical_headers_are_refused(
    verifier: TokenVerifier, issuer: TestIssuer
) -> None:
    token = signed(issuer, claims_for(issuer), crit=["exp-extension"], **{"exp-extension": 1})
    await refused(verifier, token)
    await refused(verifier, signed(issuer, claims_for(issuer), b64=False))


async def test_tokens_over_8_kib_are_refused(verifier: TokenVerifier, issuer: TestIssuer) -> None:
    token = signed(issuer, claims_for(issuer, padding="x" * MAX_TOKEN_BYTES))
    assert len(token) > MAX_TOKEN_BYTES
    assert "large" in await refused(verifier, token)
    assert verifier.jwks.fetch_count == 0


@settings(max_examples=150, deadline=None)
@given(
    text=st.text(max_size=300)
    | st.from_regex(r"[A-Za-z0-9_\-]{0,40}(\.[A-Za-z0-9_\-=]{0,40}){0,5}")
)
async def test_arbitrary_input_only_ever_raises_invalid_token(text: str) -> None:
    # No JWKS behind it: anything that got as far as a key lookup would fail to fetch.
    jwks = JwksCache("http://127.0.0.1:9/jwks.json", timeout=0.2, retry_interval=3600)
    verifier = TokenVerifier(jwks, issuer=ISSUER, audience=AUDIENCE)
    with pytest.raises(InvalidToken):
        await verifier.verify(text)
    await jwks.aclose()


# --- the verified-token cache -------------------------------------------------------------


async def test_a_verified_token_is_cached_until_it_expires(
    issuer: TestIssuer, jwks_server: RealHttpServer
) -> None:
    clock = Clock(time.time())
    verifier = make_verifier(jwks_server, clock=clock)
    now = int(clock.now)
    token = signed(issuer, claims_for(issuer, iat=now, exp=now + 120))
    first = await verifier.verify(token)
    assert await verifier.verify(token) is first  # served from the cache
    clock.now = now + 120 + 61
    # Past its expiry (and the leeway) the cached entry is dropped and the token re-checked.
    # PyJWT checks ``exp`` against the real clock, so only the cache is under test here.
    assert await verifier.verify(token) is not first
    await verifier.jwks.aclose()


async def test_a_cached_token_dies_with_its_key(
    issuer: TestIssuer, jwks_server: RealHttpServer
) -> None:
    jwks_clock = Clock(0.0)
    verifier = make_verifier(jwks_server, jwks_clock=jwks_clock, ttl=300)
    token = issuer.mint()
    await verifier.verify(token)
    jwks_server.state.document = {"keys": []}  # the key was retired
    assert await verifier.jwks.refresh()
    await refused(verifier, token)
    await verifier.jwks.aclose()


async def test_the_cache_is_bounded(issuer: TestIssuer, jwks_server: RealHttpServer) -> None:
    verifier = make_verifier(jwks_server)
    verifier.cache_size = 5
    for _ in range(20):
        await verifier.verify(issuer.mint())
    assert len(verifier._cache) == 5
    await verifier.jwks.aclose()


# --- the JWKS cache -----------------------------------------------------------------------


async def test_readiness_waits_for_the_first_fetch(
    issuer: TestIssuer, jwks_server: RealHttpServer
) -> None:
    jwks_server.state.status = 503
    jwks = JwksCache(f"{jwks_server.url}/jwks.json", retry_interval=0.01)
    with pytest.raises(RuntimeError):
        await jwks.check_ready()
    assert not await jwks.refresh()
    jwks_server.state.status = 200
    loader = asyncio.create_task(jwks.load_until_ready(interval=0.01))
    while not jwks.loaded:
        await asyncio.sleep(0.01)
    await jwks.check_ready()
    assert jwks.kids == {issuer.kid}
    loader.cancel()
    await jwks.aclose()


async def test_concurrent_refreshes_share_one_fetch(
    issuer: TestIssuer, jwks_server: RealHttpServer
) -> None:
    jwks_server.state.delay = 0.2
    jwks = JwksCache(f"{jwks_server.url}/jwks.json")
    results = await asyncio.gather(*(jwks.refresh() for _ in range(20)))
    assert all(results)
    assert len(jwks_server.state.hits) == 1
    await jwks.aclose()


async def test_many_first_requests_share_one_fetch(
    issuer: TestIssuer, jwks_server: RealHttpServer
) -> None:
    jwks_server.state.delay = 0.2
    verifier = make_verifier(jwks_server)
    tokens = [issuer.mint() for _ in range(20)]
    claims = await asyncio.gather(*(verifier.verify(t) for t in tokens))
    assert len(claims) == 20
    assert len(jwks_server.state.hits) == 1
    await verifier.jwks.aclose()


async def test_stale_keys_keep_verifying_when_a_refresh_fails(
    issuer: TestIssuer, jwks_server: RealHttpServer
) -> None:
    jwks_clock = Clock(0.0)
    verifier = make_verifier(jwks_server, jwks_clock=jwks_clock, ttl=300)
    await verifier.verify(issuer.mint())
    jwks_server.state.status = 500
    jwks_clock.now += 301  # the TTL passed and auth is failing
    assert not await verifier.jwks.refresh()
    assert verifier.jwks.last_error is not None
    assert await verifier.verify(issuer.mint())
    jwks_server.state.status = 200
    jwks_server.state.document = {"unexpected": True}  # garbage keeps the old keys too
    assert not await verifier.jwks.refresh()
    assert verifier.jwks.kids == {issuer.kid}
    await verifier.jwks.aclose()


async def test_the_ttl_triggers_a_background_refresh(
    issuer: TestIssuer, jwks_server: RealHttpServer
) -> None:
    jwks_clock = Clock(0.0)
    verifier = make_verifier(jwks_server, jwks_clock=jwks_clock, ttl=300)
    await verifier.verify(issuer.mint())
    jwks_clock.now += 100
    await verifier.verify(issuer.mint())
    assert len(jwks_server.state.hits) == 1  # still fresh
    jwks_clock.now += 201
    assert await verifier.verify(issuer.mint())  # answered from the cached keys
    while len(jwks_server.state.hits) < 2:
        await asyncio.sleep(0.01)
    await verifier.jwks.aclose()


async def test_an_unknown_kid_picks_up_a_rotated_key(
    issuer: TestIssuer, jwks_server: RealHttpServer
) -> None:
    jwks_clock = Clock(0.0)
    verifier = make_verifier(jwks_server, jwks_clock=jwks_clock)
    await verifier.verify(issuer.mint())
    rotated = TestIssuer(kid="test-key-2")
    jwks_server.state.document = {"keys": issuer.jwks()["keys"] + rotated.jwks()["keys"]}
    jwks_clock.now += 31
    assert (await verifier.verify(rotated.mint())).scopes
    assert await verifier.verify(issuer.mint())
    await verifier.jwks.aclose()


async def test_a_flood_while_auth_is_down_is_throttled(
    issuer: TestIssuer, jwks_server: RealHttpServer
) -> None:
    jwks_clock = Clock(0.0)
    jwks_server.state.status = 503
    verifier = make_verifier(jwks_server, jwks_clock=jwks_clock)
    for _ in range(50):
        await refused(verifier, issuer.mint())
    assert len(jwks_server.state.hits) == 1
    await verifier.jwks.aclose()


async def test_an_oversized_jwks_is_refused(
    issuer: TestIssuer, jwks_server: RealHttpServer
) -> None:
    document = issuer.jwks()
    document["padding"] = "x" * 300_000
    jwks_server.state.document = document
    jwks = JwksCache(f"{jwks_server.url}/jwks.json")
    assert not await jwks.refresh()
    await jwks.aclose()


# --- the FastAPI dependencies services use ------------------------------------------------


@contextlib.asynccontextmanager
async def nothing(_app: FastAPI) -> AsyncIterator[None]:
    yield


def dependency_app(verifier: TokenVerifier) -> FastAPI:
    app = build_app(service="probe", title="probe", version="0", lifespan=nothing)
    shared_state(app).verifier = verifier

    @app.get("/me")
    async def me(claims: ClaimsDep) -> dict[str, str]:
        """Who the token says."""
        return {"sub": claims.sub}

    @app.get("/tasks")
    async def tasks(
        claims: Annotated[Claims, Depends(RequireScope("tasks:read"))],
    ) -> dict[str, str]:
        """Needs tasks:read."""
        return {"sub": claims.sub}

    return app


async def test_dependencies_answer_401_and_403_as_rfc_6750_says(
    verifier: TokenVerifier, issuer: TestIssuer
) -> None:
    async with running_app(dependency_app(verifier)) as client:
        missing = await client.get("/me")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"].startswith("Bearer")
        assert "error=" not in missing.headers["www-authenticate"]
        assert missing.headers["content-type"] == "application/problem+json"

        bad = await client.get("/me", headers={"Authorization": "Bearer abc.def.ghi"})
        assert bad.status_code == 401
        assert 'error="invalid_token"' in bad.headers["www-authenticate"]

        in_query = await client.get("/me", params={"access_token": issuer.mint()})
        assert in_query.status_code == 401

        basic = await client.get("/me", headers={"Authorization": f"Basic {issuer.mint()}"})
        assert basic.status_code == 401

        good = f"Bearer {issuer.mint(scope='profile')}"
        twice = httpx.Headers([("Authorization", good), ("Authorization", "Bearer abc.def.ghi")])
        doubled = await client.get("/me", headers=twice)
        assert doubled.status_code == 401
        assert "error=" not in doubled.headers["www-authenticate"]

        token = issuer.mint(scope="profile")
        ok = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200

        forbidden = await client.get("/tasks", headers={"Authorization": f"Bearer {token}"})
        assert forbidden.status_code == 403
        assert forbidden.json()["error"] == "insufficient_scope"
        challenge = forbidden.headers["www-authenticate"]
        assert 'error="insufficient_scope"' in challenge
        assert 'scope="tasks:read"' in challenge


async def test_a_good_token_is_503_not_401_while_no_keys_have_loaded(
    issuer: TestIssuer, jwks_server: RealHttpServer
) -> None:
    # The client's token is fine; the service cannot judge it yet. A 401 would make the
    # client throw its session away.
    jwks_clock = Clock(0.0)
    jwks_server.state.status = 503
    verifier = make_verifier(jwks_server, jwks_clock=jwks_clock)
    token = issuer.mint(scope="profile")
    with pytest.raises(KeysUnavailable):
        await verifier.verify(token)
    async with running_app(dependency_app(verifier)) as client:
        waiting = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
        assert waiting.status_code == 503
        assert waiting.headers["content-type"] == "application/problem+json"
        assert int(waiting.headers["retry-after"]) >= 1
        jwks_server.state.status = 200
        jwks_clock.now += 5.0
        ok = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
        unknown = issuer.mint(headers={"kid": "not-published"})
        refused_now = await client.get("/me", headers={"Authorization": f"Bearer {unknown}"})
        assert refused_now.status_code == 401
    await verifier.jwks.aclose()


async def test_an_es256_signature_of_zeros_is_refused(issuer: TestIssuer) -> None:
    # CVE-2022-21449 ("psychic signatures"): r = s = 0 must never verify.
    from cryptography.hazmat.primitives.asymmetric import ec
    from jwt.algorithms import ECAlgorithm

    key = ec.generate_private_key(ec.SECP256R1())
    jwk: dict[str, Any] = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwk.update(kid="ec-1", alg="ES256", use="sig")
    with RealHttpServer(HttpState(document={"keys": [jwk]})) as server:
        jwks = JwksCache(f"{server.url}/jwks.json", algorithms=("ES256",))
        verifier = TokenVerifier(jwks, issuer=ISSUER, audience=AUDIENCE, algorithms=("ES256",))
        header = {"alg": "ES256", "typ": "at+jwt", "kid": "ec-1"}
        payload = claims_for(issuer)
        genuine = jwt.encode(payload, key, algorithm="ES256", headers=header)
        assert await verifier.verify(genuine)
        zeros = f"{b64json(header)}.{b64json(payload)}.{b64(bytes(64))}"
        await refused(verifier, zeros)
        await jwks.aclose()

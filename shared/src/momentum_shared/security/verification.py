"""Access-token verification (RFC 9068 ``at+jwt``) against the JWKS, with a verified-token cache."""

from __future__ import annotations

import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt

from momentum_shared.security.jwks import JwksCache
from momentum_shared.validation import valid_timezone

MAX_TOKEN_BYTES = 8 * 1024
# JWS compact serialization only: three base64url segments and a non-empty signature.
# This refuses JWE (five segments), JSON serialization, unsigned tokens and stray bytes early.
_COMPACT_JWS = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
_KID = re.compile(r"^[A-Za-z0-9_\-.]{1,128}$")
# Key-location headers (RFC 8725 §3.10) are never fetched nor trusted; ``crit`` and ``b64``
# ask for extensions this verifier does not implement, so their presence is a refusal.
_FORBIDDEN_HEADERS = ("jku", "jwk", "x5u", "x5c", "crit", "b64", "zip", "enc")
_ACCESS_TOKEN_TYPES = ("at+jwt", "application/at+jwt")
_REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub"]


class InvalidToken(Exception):
    """The token is missing, malformed, unverifiable or expired. The message is safe to show."""


class KeysUnavailable(InvalidToken):
    """No key set has ever loaded: the token cannot be judged, which is not its fault.

    Callers answer 503 with ``Retry-After`` rather than 401, so a client keeps its token.
    """


@dataclass(frozen=True, slots=True)
class Claims:
    sub: str
    scopes: frozenset[str]
    exp: int
    iat: int
    sid: str | None = None
    tz: str | None = None
    client_id: str | None = None
    jti: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def user_id(self) -> uuid.UUID:
        return uuid.UUID(self.sub)

    @property
    def timezone(self) -> str:
        """The token's ``tz`` when it names a real IANA zone, else ``UTC``."""
        return valid_timezone(self.tz) or "UTC"

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


class TokenVerifier:
    def __init__(
        self,
        jwks: JwksCache,
        *,
        issuer: str,
        audience: str,
        algorithms: tuple[str, ...] = ("RS256",),
        leeway: int = 60,
        cache_size: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.jwks = jwks
        self.issuer = issuer
        self.audience = audience
        self.algorithms = algorithms
        self.leeway = leeway
        self.cache_size = cache_size
        self._clock = clock
        # token -> (claims, kid): a bounded LRU of verified tokens, each kept until it expires
        # and only while the key that signed it is still published.
        self._cache: OrderedDict[str, tuple[Claims, str]] = OrderedDict()

    async def verify(self, token: str) -> Claims:
        """The token's claims, or ``InvalidToken`` with a message safe to show the client."""
        if len(token) > MAX_TOKEN_BYTES:
            raise InvalidToken("the token is too large")
        cached = self._cache.get(token)
        if cached is not None:
            claims, kid = cached
            if claims.exp + self.leeway > self._clock() and self.jwks.has(kid):
                self._cache.move_to_end(token)
                return claims
            del self._cache[token]
        claims, kid = await self._verify_uncached(token)
        self._cache[token] = (claims, kid)
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return claims

    async def _verify_uncached(self, token: str) -> tuple[Claims, str]:
        if not _COMPACT_JWS.match(token):
            raise InvalidToken("the token is malformed")
        try:
            header = jwt.get_unverified_header(token)
        except (jwt.PyJWTError, ValueError, TypeError):
            raise InvalidToken("the token is malformed") from None
        # The accepted algorithms are pinned by configuration; the token's own ``alg`` only
        # has to agree with them and with the key (``none`` and HS* never do).
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise InvalidToken("the token's algorithm is not accepted")
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in _ACCESS_TOKEN_TYPES:
            raise InvalidToken("the token is not an access token (typ must be at+jwt)")
        if any(name in header for name in _FORBIDDEN_HEADERS):
            raise InvalidToken("the token carries refused headers (jku, jwk, x5u, x5c, crit)")
        kid = header.get("kid")
        # The kid is only ever a dictionary key; the pattern keeps junk out of logs and caches.
        if not isinstance(kid, str) or not _KID.match(kid):
            raise InvalidToken("the token's key id is missing or malformed")
        key = await self.jwks.key_for(kid)
        if key is None:
            if not self.jwks.loaded:
                raise KeysUnavailable("the signing keys cannot be loaded; try again shortly")
            raise InvalidToken("the token was signed by an unknown key")
        if key.algorithm_name != alg:
            raise InvalidToken("the token's algorithm does not match its key")
        try:
            payload = jwt.decode(
                token,
                key=key,
                algorithms=[key.algorithm_name],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": _REQUIRED_CLAIMS, "verify_signature": True},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise InvalidToken("the token is not valid yet") from None
        except jwt.PyJWTError:
            raise InvalidToken("the token is invalid") from None
        except (ValueError, TypeError):
            raise InvalidToken("the token is malformed") from None
        return self._claims(payload), kid

    def _claims(self, payload: dict[str, Any]) -> Claims:
        now = self._clock()
        iat, exp = payload.get("iat"), payload.get("exp")
        if not isinstance(iat, int | float) or not isinstance(exp, int | float):
            raise InvalidToken("the token's times are malformed")
        if iat > now + self.leeway:
            raise InvalidToken("the token was issued in the future")
        if exp <= iat:
            raise InvalidToken("the token's lifetime is malformed")
        sub = payload.get("sub")
        if not isinstance(sub, str):
            raise InvalidToken("the token's subject is malformed")
        try:
            # Canonical form, so "{…}" or "urn:uuid:…" spellings cannot look like another user.
            canonical_sub = str(uuid.UUID(sub))
        except ValueError:
            raise InvalidToken("the token's subject is malformed") from None
        if canonical_sub != sub.lower():
            raise InvalidToken("the token's subject is malformed")
        scope = payload.get("scope", "")
        if not isinstance(scope, str):
            raise InvalidToken("the token's scope is malformed")

        def text(name: str) -> str | None:
            value = payload.get(name)
            return value if isinstance(value, str) else None

        return Claims(
            sub=canonical_sub,
            scopes=frozenset(scope.split()),
            exp=int(exp),
            iat=int(iat),
            sid=text("sid"),
            tz=text("tz"),
            client_id=text("client_id"),
            jti=text("jti"),
            raw=payload,
        )

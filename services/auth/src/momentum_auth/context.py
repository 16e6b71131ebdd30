"""What the rules need besides the session."""

from __future__ import annotations

from dataclasses import dataclass

from momentum_auth.passwords import PasswordHasher
from momentum_auth.settings import AuthSettings
from momentum_auth.signing_keys.crypto import PrivateKeys
from momentum_shared.security import TokenVerifier


@dataclass
class AuthContext:
    """Settings, the hasher, the key material, and auth's own token verifier."""

    settings: AuthSettings
    hasher: PasswordHasher
    keys: PrivateKeys
    verifier: TokenVerifier | None = None

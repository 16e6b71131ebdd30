"""Signing-key material: RS256 key pairs and their encryption at rest."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from jwt.algorithms import RSAAlgorithm

from momentum_auth.models import SigningKey

ALGORITHM = "RS256"
_NONCE_BYTES = 12
_KDF_INFO = b"momentum-auth signing-key encryption v1"


class KeyDecryptionError(Exception):
    """A stored private key cannot be decrypted with any configured key-encryption key."""


class KeyEncryption:
    """AES-256-GCM under a key derived (HKDF-SHA256) from the configured key-encryption key.

    Each stored key records the id of the KEK that sealed it, so a KEK can be replaced
    while the old one is still listed under ``previous``. The key id is the AEAD's
    associated data: a ciphertext moved to another row does not decrypt.
    """

    def __init__(self, current: str, previous: Sequence[str] = ()) -> None:
        self.kek_id, self._current = _derive(current)
        self._by_id: dict[str, AESGCM] = {self.kek_id: self._current}
        for secret in previous:
            kek_id, aead = _derive(secret)
            self._by_id.setdefault(kek_id, aead)

    def encrypt(self, plaintext: bytes, *, kid: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._current.encrypt(nonce, plaintext, kid.encode())

    def decrypt(self, sealed: bytes, *, kid: str, kek_id: str) -> bytes:
        aead = self._by_id.get(kek_id)
        if aead is None:
            raise KeyDecryptionError(f"signing key {kid} was sealed by an unknown KEK")
        try:
            return aead.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], kid.encode())
        except InvalidTag:
            raise KeyDecryptionError(f"signing key {kid} does not decrypt") from None


def _derive(secret: str) -> tuple[str, AESGCM]:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KDF_INFO).derive(
        secret.encode()
    )
    # A fingerprint of the derived key, not of the secret: it names the KEK without revealing it.
    kek_id = hashlib.sha256(b"momentum-auth kek-id" + key).hexdigest()[:16]
    return kek_id, AESGCM(key)


@dataclass(frozen=True, slots=True)
class NewKey:
    kid: str
    public_jwk: dict[str, Any]
    private_pkcs8: bytes


def generate_key(bits: int) -> NewKey:
    """A fresh RSA key pair; the kid is its RFC 7638 thumbprint (stable and opaque)."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    jwk: dict[str, Any] = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
    canonical = json.dumps(
        {"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}, separators=(",", ":"), sort_keys=True
    )
    kid = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).decode()
    kid = kid.rstrip("=")
    # RFC 7517 §4.3: "use" and "key_ops" should not appear together; "use" is what verifiers read.
    jwk.pop("key_ops", None)
    jwk.update(kid=kid, alg=ALGORITHM, use="sig")
    pkcs8 = private.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return NewKey(kid=kid, public_jwk=jwk, private_pkcs8=pkcs8)


class PrivateKeys:
    """Decrypted private keys by kid, so a sign-in does not pay for AES and DER parsing."""

    def __init__(self, encryption: KeyEncryption) -> None:
        self.encryption = encryption
        self._keys: dict[str, rsa.RSAPrivateKey] = {}
        # Told the kid of every key this process starts to sign with (auth's own verifier,
        # so a key this replica has just rotated to verifies at once).
        self.on_first_use: Callable[[str], None] | None = None

    def seal(self, new: NewKey) -> SigningKey:
        return SigningKey(
            kid=new.kid,
            algorithm=ALGORITHM,
            public_jwk=json.dumps(new.public_jwk, sort_keys=True),
            private_key_encrypted=self.encryption.encrypt(new.private_pkcs8, kid=new.kid),
            kek_id=self.encryption.kek_id,
        )

    def private_key(self, row: SigningKey) -> rsa.RSAPrivateKey:
        key = self._keys.get(row.kid)
        if key is None:
            der = self.encryption.decrypt(row.private_key_encrypted, kid=row.kid, kek_id=row.kek_id)
            loaded = serialization.load_der_private_key(der, password=None)
            if not isinstance(loaded, rsa.RSAPrivateKey):
                raise KeyDecryptionError(f"signing key {row.kid} is not an RSA key")
            key = self._keys[row.kid] = loaded
            if self.on_first_use is not None:
                self.on_first_use(row.kid)
        return key


async def new_signing_key(keys: PrivateKeys, bits: int) -> SigningKey:
    """Generate (off the event loop: RSA generation takes tens of milliseconds) and seal."""
    return keys.seal(await asyncio.to_thread(generate_key, bits))


def public_jwk(row: SigningKey) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(row.public_jwk)
    return jwk

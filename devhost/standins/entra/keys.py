"""The tenant's token-signing keys: RSA private keys in ``keys/``, the newest signs.

Entra publishes several keys at once and rolls them over; a verifier that caches the JWKS must
fetch it again when a token names a ``kid`` it has not seen. :meth:`KeyRing.rotate` adds a key
(new tokens are signed with it while the older ones stay published, as during a real rollover)
or, with ``retire_previous``, also drops every older key, so tokens they signed stop verifying.

Files are named ``{sequence:06d}-{kid}.pem`` so the order survives restarts. The ``kid`` (and
``x5t``, which Entra sets to the same value) is the base64url SHA-1 thumbprint of the public key.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from devhost.standins.keyvault._files import atomic_write, ensure_private_dir

KEY_BITS = 2048
_SUFFIX = ".pem"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    sequence: int
    private_key: rsa.RSAPrivateKey

    def public_jwk(self) -> dict[str, str]:
        """The key as Entra's JWKS lists it."""
        numbers = self.private_key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": _b64_uint(numbers.n),
            "e": _b64_uint(numbers.e),
        }

    @property
    def file_name(self) -> str:
        return f"{self.sequence:06d}-{self.kid}{_SUFFIX}"


class KeyRing:
    """The published keys, oldest first; thread-safe."""

    def __init__(self, keys_dir: Path) -> None:
        self._dir = keys_dir
        self._lock = threading.Lock()
        ensure_private_dir(keys_dir)
        self._keys = _load(keys_dir)
        if not self._keys:
            self._add()

    @property
    def signing_key(self) -> SigningKey:
        with self._lock:
            return self._keys[-1]

    def published(self) -> list[SigningKey]:
        with self._lock:
            return list(self._keys)

    def rotate(self, *, retire_previous: bool = False) -> str:
        """Add a key that signs from now on; ``retire_previous`` removes all others."""
        with self._lock:
            new = self._add()
            if retire_previous:
                for old in self._keys[:-1]:
                    (self._dir / old.file_name).unlink(missing_ok=True)
                self._keys = [new]
            return new.kid

    def _add(self) -> SigningKey:
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
        sequence = self._keys[-1].sequence + 1 if self._keys else 1
        key = SigningKey(_thumbprint(private_key), sequence, private_key)
        pem = private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        atomic_write(self._dir / key.file_name, pem)
        self._keys.append(key)
        return key


def _load(keys_dir: Path) -> list[SigningKey]:
    keys = []
    for path in sorted(keys_dir.glob(f"*{_SUFFIX}")):
        private_key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(private_key, rsa.RSAPrivateKey):
            raise ValueError(f"{path} is not an RSA private key")
        sequence = int(path.name.split("-", 1)[0])
        keys.append(SigningKey(_thumbprint(private_key), sequence, private_key))
    return keys


def _thumbprint(private_key: rsa.RSAPrivateKey) -> str:
    der = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.urlsafe_b64encode(hashlib.sha1(der).digest()).rstrip(b"=").decode("ascii")  # noqa: S324


def _b64_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

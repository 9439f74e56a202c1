"""Short-lived SAS URLs for exactly one blob.

In Azure the function has no account key (shared keys are disabled): it signs user-delegation
SAS with a delegation key obtained through its managed identity, cached and renewed well before
it expires. Locally, against Azurite with a connection string, it signs with the account key.
Either way the grant is the narrowest that works: read-only for downloads, create-only for
uploads, one blob, starting five minutes back for clock skew, HTTPS-only when the endpoint is
HTTPS, and every query value percent-encoded (signatures contain `/`, and uv takes a file name
up to the last `/` of the URL).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, quote, urlencode

from azure.storage.blob import (
    BlobSasPermissions,
    BlobServiceClient,
    UserDelegationKey,
    generate_blob_sas,
)

from shared.core.clock import utc_now

CLOCK_SKEW = timedelta(minutes=5)
DELEGATION_KEY_LIFETIME = timedelta(hours=12)
DELEGATION_KEY_RENEW_BEFORE = timedelta(hours=1)
MAX_EXPIRY = timedelta(hours=1)


@dataclass(frozen=True)
class SignedUrl:
    url: str
    expires_on: datetime


def encode_query(token: str) -> str:
    """Re-encode a SAS query so that every value is fully percent-encoded (`/` too)."""
    pairs = parse_qsl(token, keep_blank_values=True, strict_parsing=True)
    return urlencode(pairs, quote_via=quote, safe="")


class SasSigner:
    """Signs SAS URLs for blobs of one storage account (account key or user delegation)."""

    def __init__(
        self, service: BlobServiceClient, *, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self.service = service
        self.clock = clock
        self._lock = threading.Lock()
        self._delegation: UserDelegationKey | None = None
        self._delegation_expires: datetime | None = None
        credential = service.credential
        self._account_key: str | None = getattr(credential, "account_key", None)
        self._base_url = service.url.rstrip("/")

    @property
    def uses_account_key(self) -> bool:
        return self._account_key is not None

    def read_url(self, container: str, blob: str, lifetime: timedelta) -> SignedUrl:
        return self._sign(container, blob, BlobSasPermissions(read=True), lifetime)

    def create_url(self, container: str, blob: str, lifetime: timedelta) -> SignedUrl:
        """Create-only: may write the blob if it does not exist yet; cannot read or overwrite."""
        return self._sign(container, blob, BlobSasPermissions(create=True), lifetime)

    def delegation_key(self) -> UserDelegationKey:
        """The cached user-delegation key, renewed an hour before it expires."""
        now = self.clock()
        with self._lock:
            if (
                self._delegation is None
                or self._delegation_expires is None
                or self._delegation_expires - now < DELEGATION_KEY_RENEW_BEFORE
            ):
                expires = now + DELEGATION_KEY_LIFETIME
                self._delegation = self.service.get_user_delegation_key(now - CLOCK_SKEW, expires)
                self._delegation_expires = expires
            return self._delegation

    def _account_name(self) -> str:
        name = self.service.account_name
        if name is None:  # an endpoint that names no account (a custom domain, say)
            raise ValueError("the storage endpoint names no account to sign a SAS for")
        return str(name)

    def _sign(
        self, container: str, blob: str, permission: BlobSasPermissions, lifetime: timedelta
    ) -> SignedUrl:
        if lifetime <= timedelta(0) or lifetime > MAX_EXPIRY:
            raise ValueError("a SAS lifetime must be positive and at most one hour")
        now = self.clock()
        expires = now + lifetime
        # The blob URL as the SDK spells it, without building a BlobClient per signature
        # (that alone was a third of a /files/ request's in-process cost).
        url = f"{self._base_url}/{quote(container, safe='')}/{quote(blob, safe='/~')}"
        https = url.startswith("https://")
        token = generate_blob_sas(
            self._account_name(),
            container,
            blob,
            account_key=self._account_key,
            # Without an account key (Azure: shared keys disabled) it is a user-delegation SAS.
            user_delegation_key=None if self.uses_account_key else self.delegation_key(),
            permission=permission,
            start=now - CLOCK_SKEW,
            expiry=expires,
            protocol="https" if https else "https,http",
        )
        return SignedUrl(f"{url}?{encode_query(token)}", expires)

"""HTTPS GETs of an Entra ID tenant's public OpenID documents (the OpenID configuration and its
key set), bounded in time and size.

These URLs and answers hold no secret, but a failure must still never pass on requests'
exception text (it can quote headers): `EntraUnavailable.reason` names the kind of failure and
the URL only.
"""

from __future__ import annotations

import json
import time
from typing import Any

import requests
import requests.adapters
import urllib3.exceptions

CONNECT_SECONDS = 3.0
READ_SECONDS = 5.0
MAX_BYTES = 1024 * 1024
"""A tenant's key set is a few KB; a larger answer is not one."""
CHUNK_BYTES = 64 * 1024
USER_AGENT = "wheelvault-entra"


class EntraUnavailable(Exception):
    """The tenant's OpenID configuration or keys could not be read. `reason` is safe to log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class OidcClient:
    """JSON documents over one pooled HTTPS session; the CA bundle, when given, is the only
    trust (the local stand-in's own CA). No redirects, proxies or .netrc: the URL is the whole
    story."""

    def __init__(
        self,
        ca_bundle: str | None,
        *,
        connect_seconds: float = CONNECT_SECONDS,
        read_seconds: float = READ_SECONDS,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self.connect_seconds = connect_seconds
        self.read_seconds = read_seconds
        self.max_bytes = max_bytes
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = ca_bundle if ca_bundle else True
        self.session.headers["User-Agent"] = USER_AGENT
        self.session.headers["Accept"] = "application/json"
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=4, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)

    def get_json(self, url: str, *, timeout: float) -> dict[str, Any]:
        """The JSON object at `url`, read whole within `timeout` seconds; else EntraUnavailable."""
        deadline = time.monotonic() + timeout
        bounded = (min(self.connect_seconds, timeout), min(self.read_seconds, timeout))
        try:
            with self.session.get(
                url, timeout=bounded, stream=True, allow_redirects=False
            ) as response:
                if response.status_code != 200:
                    raise EntraUnavailable(f"HTTP {response.status_code} from {url}")
                body = self._body(response, url, deadline)
        except (requests.Timeout, urllib3.exceptions.TimeoutError):
            raise EntraUnavailable(f"timed out reading {url}") from None
        except requests.exceptions.SSLError:
            raise EntraUnavailable(f"TLS verification failed for {url}") from None
        except (requests.RequestException, urllib3.exceptions.HTTPError) as error:
            raise EntraUnavailable(f"{type(error).__name__} reading {url}") from None
        return _json_object(body, url)

    def _body(self, response: requests.Response, url: str, deadline: float) -> bytes:
        """The body, whole, by what each socket read brings (`read1`): an answer that trickles
        in below the read timeout is cut off at the deadline, not read to its end."""
        received = bytearray()
        while chunk := response.raw.read1(CHUNK_BYTES, decode_content=True):
            received += chunk
            if len(received) > self.max_bytes:
                raise EntraUnavailable(f"more than {self.max_bytes} bytes from {url}")
            if time.monotonic() > deadline:
                raise EntraUnavailable(f"timed out reading {url}")
        return bytes(received)


def _json_object(body: bytes, url: str) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        raise EntraUnavailable(f"not JSON from {url}") from None
    if not isinstance(data, dict):
        raise EntraUnavailable(f"not a JSON object from {url}")
    return data

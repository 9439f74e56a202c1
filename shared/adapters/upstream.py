"""HTTP to upstream simple indexes: pages and files, bounded in time and size, never leaking
credentials.

An upstream URL may carry credentials (`https://user:secret@host/simple/`). They are taken out of
the URL once, here, and sent as HTTP Basic auth only to that upstream's own origin (scheme, host
and port): a file hosted elsewhere (PyPI's files.pythonhosted.org, say) gets no credentials, and
requests drops them on a redirect to another host. Every URL that reaches a log line or a message
goes through `redact_url`, and no exception text from requests is ever passed on (it quotes URLs).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

import requests
import requests.adapters
from packaging.utils import NormalizedName

from shared.core.redact import redact_url
from shared.core.upstream import strip_credentials, upstream_page_url, with_credentials_of

ACCEPT = (
    "application/vnd.pypi.simple.v1+json, "
    "application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"
)
"""PEP 691 JSON preferred; PEP 503 HTML (either spelling) accepted."""

CONNECT_SECONDS = 5.0
READ_SECONDS = 15.0
"""Per socket read, so a large file that keeps arriving is never cut off by it."""
PAGE_SECONDS = 30.0
"""A page's whole fetch, redirects included; a page that trickles is given up."""
FILE_SECONDS = 900.0
"""A file's whole copy: hundreds of MB at a modest rate, and never an hour-long hang."""
MAX_PAGE_BYTES = 64 * 1024 * 1024
MAX_REDIRECTS = 5
CHUNK_BYTES = 1024 * 1024
USER_AGENT = "wheelvault-upstream"


class UpstreamUnavailable(Exception):
    """No usable answer: unreachable, timed out, too large, or a status other than 200/404/410.
    The message is safe to log and show: redacted URL and the kind of failure only."""


@dataclass(frozen=True)
class Upstream:
    """One configured index: the URL as configured (maybe with credentials) and without them."""

    configured: str = field(repr=False)

    @property
    def base(self) -> str:
        return strip_credentials(self.configured)

    @property
    def shown(self) -> str:
        return redact_url(self.base)

    def auth_for(self, url: str) -> tuple[str, str] | None:
        """This upstream's credentials if `url` is on its origin, else None."""
        with_credentials = urlsplit(with_credentials_of(url, self.configured))
        if with_credentials.username is None and with_credentials.password is None:
            return None
        return unquote(with_credentials.username or ""), unquote(with_credentials.password or "")


def parse_upstreams(urls: Iterable[str]) -> list[Upstream]:
    """Upstreams from configured base URLs (as `parse_upstream_urls` checked them)."""
    return [Upstream(url if url.endswith("/") else url + "/") for url in urls]


@dataclass(frozen=True)
class FetchedPage:
    data: bytes
    content_type: str
    url: str
    """Where the page was finally read (after redirects), to resolve relative links against."""


class UpstreamClient:
    """GETs to upstream indexes over one pooled session."""

    def __init__(
        self,
        upstreams: list[Upstream],
        *,
        connect_seconds: float = CONNECT_SECONDS,
        read_seconds: float = READ_SECONDS,
        page_seconds: float = PAGE_SECONDS,
        file_seconds: float = FILE_SECONDS,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        self.upstreams = upstreams
        self.timeout = (connect_seconds, read_seconds)
        self.page_seconds = page_seconds
        self.file_seconds = file_seconds
        self.chunk_bytes = chunk_bytes
        self.session = requests.Session()
        # No proxies or .netrc from the environment: the configured URL is the whole story.
        self.session.trust_env = False
        self.session.max_redirects = MAX_REDIRECTS
        self.session.headers["User-Agent"] = USER_AGENT
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=16, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def fetch_page(self, upstream: Upstream, project: NormalizedName) -> FetchedPage | None:
        """The project's page from `upstream`; None when it has no such project (404/410)."""
        url = upstream_page_url(upstream.base, project)
        with self._get(url, {"Accept": ACCEPT}, self.page_seconds) as (response, deadline):
            if response.status_code in (404, 410):
                return None
            data = b"".join(self._chunks(response, url, deadline, MAX_PAGE_BYTES))
            content_type = response.headers.get("Content-Type", "")
            return FetchedPage(data, content_type, strip_credentials(response.url))

    @contextlib.contextmanager
    def open_file(self, url: str) -> Iterator[Iterator[bytes]]:
        """The file's bytes as chunks of at most `chunk_bytes`, never the whole file at once."""
        with self._get(url, {"Accept": "*/*"}, self.file_seconds) as (response, deadline):
            if response.status_code != 200:
                raise UpstreamUnavailable(f"{redact_url(url)} answered {response.status_code}")
            yield self._chunks(response, url, deadline, None)

    @contextlib.contextmanager
    def _get(
        self, url: str, headers: dict[str, str], seconds: float
    ) -> Iterator[tuple[requests.Response, float]]:
        deadline = time.monotonic() + seconds
        # Only for credential-free URLs (all a page yields): never someone else's credentials.
        auth = next(filter(None, (u.auth_for(url) for u in self.upstreams)), None)
        try:
            response = self.session.get(
                url, headers=headers, auth=auth, timeout=self.timeout, stream=True
            )
        except requests.RequestException as error:
            raise UpstreamUnavailable(f"{redact_url(url)}: {_kind(error)}") from None
        try:
            if response.status_code not in (200, 404, 410):
                raise UpstreamUnavailable(f"{redact_url(url)} answered {response.status_code}")
            yield response, deadline
        finally:
            response.close()

    def _chunks(
        self, response: requests.Response, url: str, deadline: float, cap: int | None
    ) -> Iterator[bytes]:
        total = 0
        try:
            for chunk in response.iter_content(self.chunk_bytes):
                total += len(chunk)
                if cap is not None and total > cap:
                    raise UpstreamUnavailable(f"{redact_url(url)}: larger than {cap} bytes")
                if time.monotonic() > deadline:
                    raise UpstreamUnavailable(f"{redact_url(url)}: took too long")
                yield chunk
        except requests.RequestException as error:
            raise UpstreamUnavailable(f"{redact_url(url)}: {_kind(error)}") from None


def _kind(error: requests.RequestException) -> str:
    """What went wrong, in words that quote nothing from the request."""
    if isinstance(error, requests.Timeout):
        return "timed out"
    if isinstance(error, requests.TooManyRedirects):
        return f"more than {MAX_REDIRECTS} redirects"
    if isinstance(error, requests.ConnectionError):
        return "connection failed"
    return type(error).__name__

"""PEP 691 content negotiation for the simple-index pages.

pip sends ``application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.1,
text/html;q=0.01``; uv and poetry send similar lists; old clients send nothing or ``*/*``. The
answer is the representation with the highest q-value the client accepts; on a tie the order of
`OFFERS` decides (JSON first, as PyPI does). With no Accept header at all, HTML, which every
client understands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

JSON_V1: Final = "application/vnd.pypi.simple.v1+json"
HTML_V1: Final = "application/vnd.pypi.simple.v1+html"
TEXT_HTML: Final = "text/html"


@dataclass(frozen=True)
class Representation:
    media_type: str  # what the response's Content-Type says
    is_json: bool


OFFERS: Final = (
    Representation(JSON_V1, True),
    Representation(HTML_V1, False),
    Representation(TEXT_HTML, False),
)
_ALIASES: Final = {
    "application/vnd.pypi.simple.latest+json": JSON_V1,
    "application/vnd.pypi.simple.latest+html": HTML_V1,
}


def _parse(accept: str) -> list[tuple[str, float]]:
    ranges = []
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        if not media:
            continue
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    quality = 0.0
        ranges.append((_ALIASES.get(media.lower(), media.lower()), quality))
    return ranges


def _quality(offer: str, ranges: list[tuple[str, float]]) -> float:
    """The q-value of the most specific range matching `offer` (RFC 9110 section 12.5.1)."""
    kind = offer.split("/", 1)[0]
    best: tuple[int, float] | None = None
    for media, quality in ranges:
        if media == offer:
            specificity = 2
        elif media == f"{kind}/*":
            specificity = 1
        elif media == "*/*":
            specificity = 0
        else:
            continue
        if best is None or specificity > best[0]:
            best = (specificity, quality)
    return best[1] if best else 0.0


def negotiate(accept: str | None) -> Representation | None:
    """The representation to send, or None when the client accepts none of them (406)."""
    if accept is None or not accept.strip():
        return OFFERS[2]
    ranges = _parse(accept)
    scored = [(_quality(offer.media_type, ranges), -i, offer) for i, offer in enumerate(OFFERS)]
    quality, _, offer = max(scored, key=lambda item: (item[0], item[1]))
    if quality <= 0:
        return None
    # A bare */* means "anything": give the universally understood HTML, not JSON.
    if all(media == "*/*" for media, _ in ranges):
        return OFFERS[2]
    return offer

"""Redaction for anything that may reach a log line or an error message."""

from __future__ import annotations

import re
from urllib.parse import SplitResult, urlsplit, urlunsplit

_TOKEN = re.compile(r"wvt_[A-Za-z0-9-]+_[A-Za-z0-9]{20,}")
_SAS_SIGNATURE = re.compile(r"(?i)(sig=)[^&\s\"']+")


def redact_url(url: str) -> str:
    """The URL with any password in its userinfo and any SAS signature replaced by ***."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{redact_text(user)}:***@{host}"
    cleaned = SplitResult(parts.scheme, netloc, parts.path, parts.query, parts.fragment)
    return redact_text(urlunsplit(cleaned))


def redact_text(text: str) -> str:
    """Any wheelvault token or SAS signature inside free text, replaced by ***."""
    return _SAS_SIGNATURE.sub(r"\1***", _TOKEN.sub("wvt_***", text))

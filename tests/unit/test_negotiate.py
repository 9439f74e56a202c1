"""PEP 691 content negotiation: which representation of a simple-index page a client gets."""

from __future__ import annotations

import pytest

from shared.core.negotiate import HTML_V1, JSON_V1, OFFERS, TEXT_HTML, Representation, negotiate

PIP = f"{JSON_V1}, {HTML_V1}; q=0.1, {TEXT_HTML}; q=0.01"


def chosen(accept: str | None) -> str | None:
    representation = negotiate(accept)
    return None if representation is None else representation.media_type


def test_the_offers_are_json_then_the_two_html_types() -> None:
    offered = [(offer.media_type, offer.is_json) for offer in OFFERS]
    assert offered == [(JSON_V1, True), (HTML_V1, False), (TEXT_HTML, False)]
    assert JSON_V1 == "application/vnd.pypi.simple.v1+json"


@pytest.mark.parametrize("accept", [None, "", "   "])
def test_no_accept_header_gets_html_every_client_understands(accept: str | None) -> None:
    assert negotiate(accept) == Representation(TEXT_HTML, False)


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        (PIP, JSON_V1),
        (JSON_V1, JSON_V1),
        (HTML_V1, HTML_V1),
        (TEXT_HTML, TEXT_HTML),
        # The highest q-value wins, whatever the order of the list.
        (f"{TEXT_HTML};q=0.9, {JSON_V1};q=0.2", TEXT_HTML),
        (f"{JSON_V1};q=0.5, {HTML_V1};q=0.8", HTML_V1),
    ],
)
def test_the_highest_quality_offer_wins(accept: str, media_type: str) -> None:
    assert chosen(accept) == media_type


def test_a_tie_goes_to_the_first_offer_json_as_pypi_does() -> None:
    assert chosen(f"{TEXT_HTML}, {HTML_V1}, {JSON_V1}") == JSON_V1
    assert chosen(f"{TEXT_HTML}, {HTML_V1}") == HTML_V1


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        ("application/vnd.pypi.simple.latest+json", JSON_V1),
        ("application/vnd.pypi.simple.latest+html", HTML_V1),
        (f"application/vnd.pypi.simple.latest+json;q=0.1, {TEXT_HTML};q=0.5", TEXT_HTML),
    ],
)
def test_the_latest_aliases_mean_v1(accept: str, media_type: str) -> None:
    assert chosen(accept) == media_type


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        ("text/*", TEXT_HTML),
        ("application/*", JSON_V1),  # both application offers match: the tie goes to JSON
        (f"application/*;q=0.2, {TEXT_HTML};q=0.3", TEXT_HTML),
        (f"*/*;q=0.5, {TEXT_HTML};q=0.1", JSON_V1),
    ],
)
def test_wildcards_match_their_type_or_anything(accept: str, media_type: str) -> None:
    assert chosen(accept) == media_type


def test_the_most_specific_range_decides_an_offers_quality() -> None:
    # text/html is refused outright although */* would accept it; JSON comes through */*.
    assert chosen(f"*/*;q=0.5, {TEXT_HTML};q=0") == JSON_V1
    # application/* is more specific than */*: JSON at 0.2 loses to text/html at 0.9.
    assert chosen("*/*;q=0.9, application/*;q=0.2") == TEXT_HTML


def test_the_first_of_equally_specific_ranges_counts() -> None:
    assert chosen(f"{TEXT_HTML};q=0.5, {TEXT_HTML};q=0.9, {JSON_V1};q=0.7") == JSON_V1


@pytest.mark.parametrize("accept", ["*/*", "*/*;q=0.5", "*/*, */*;q=0.3"])
def test_a_bare_any_type_gets_html_not_json(accept: str) -> None:
    assert chosen(accept) == TEXT_HTML


@pytest.mark.parametrize(
    "accept",
    [
        "image/png",
        "application/json",
        f"{TEXT_HTML};q=0",
        "*/*;q=0",
        f"{JSON_V1};q=0, {HTML_V1};q=0.0, {TEXT_HTML};q=0",
        ",,",
    ],
)
def test_nothing_acceptable_is_none_for_a_406(accept: str) -> None:
    assert negotiate(accept) is None


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        # Quality values are clamped to 0..1.
        (f"{TEXT_HTML};q=2, {JSON_V1}", JSON_V1),  # 1 and 1: the tie goes to JSON
        (f"{TEXT_HTML};q=-1, {HTML_V1};q=0.1", HTML_V1),
        # A q that is not a number means "not acceptable".
        (f"{JSON_V1};q=high, {TEXT_HTML};q=0.1", TEXT_HTML),
        # Other parameters, and parameters without a value, are ignored.
        (f"{TEXT_HTML};level=1;charset=utf-8, {JSON_V1};q=0.5", TEXT_HTML),
        (f"{TEXT_HTML};flag, {JSON_V1};q=0.5", TEXT_HTML),
        # Media types and the q key are matched without regard to case or spaces.
        (f" Text/HTML ; Q=0.9 , {JSON_V1.upper()} ; q=0.4", TEXT_HTML),
        (f"{JSON_V1.upper()};q=0.4, text/plain", JSON_V1),
        # Empty list items are skipped.
        (f", ,{HTML_V1},", HTML_V1),
    ],
)
def test_header_syntax(accept: str, media_type: str) -> None:
    assert chosen(accept) == media_type

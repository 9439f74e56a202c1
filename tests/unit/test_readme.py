"""The README as a newcomer reads it: a contents list that matches, links that land, users'
sections before operators' and developers', and nothing that only exists outside a clone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.readme import CiStepError, ci_step, snippets, subsection, unmarked

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def headings() -> list[tuple[int, str]]:
    """(level, title) of every heading outside fenced code blocks, in order."""
    found: list[tuple[int, str]] = []
    fenced = False
    for line in README.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"(#{1,6}) (.+)", line)):
            found.append((len(match[1]), match[2].strip()))
    return found


def slug(title: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def section_titles() -> list[str]:
    return [title for level, title in headings() if level == 2 and title != "Contents"]


def test_the_contents_list_names_every_section_in_order() -> None:
    contents = README.split("## Contents", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"\[([^\]]+)\]\(#([^)]+)\)", contents)
    assert [title for title, _ in listed] == section_titles()
    assert all(anchor == slug(title) for title, anchor in listed)


def test_every_link_into_the_readme_lands_on_a_heading() -> None:
    anchors = {slug(title) for _, title in headings()}
    missing = sorted(set(re.findall(r"\]\(#([^)]+)\)", README)) - anchors)
    assert not missing


def test_users_come_first_then_operators_then_developers() -> None:
    order = section_titles()
    for user, operator, developer in [
        ("Installing from the index", "Configuration", "Development"),
        ("Publishing", "Deploying to Azure", "The local stack"),
        ("Access tokens", "Deploying to Azure", "Benchmarks"),
    ]:
        assert order.index(user) < order.index(operator) < order.index(developer)
    assert order[0] == "Quickstart"


def test_above_and_below_point_the_right_way() -> None:
    """`*Some heading* above` must name a heading that really is above the phrase."""
    positions = {title: README.index(f"# {title}\n") for _, title in headings()}
    for match in re.finditer(r"\*([^*\n]+)\* (above|below)", README):
        title, direction = match[1], match[2]
        if title in positions:
            earlier = positions[title] < match.start()
            assert earlier == (direction == "above"), match[0]


def test_nothing_points_outside_a_clone() -> None:
    assert "../shared" not in README


def layout_map() -> str:
    section = README.split("### Code layout\n", 1)[1]
    return section.split("```\n", 2)[1]


def test_the_layout_map_names_every_package_and_module() -> None:
    """A folder or module added to the product, the stand-ins or the CLI appears in the map."""
    layout = layout_map()
    named = set(re.findall(r"[\w.]+/?", layout))
    missing = []
    for top in ("functions", "shared", "devhost"):
        for path in sorted((ROOT / top).rglob("*.py")):
            if "__pycache__" in path.parts or path.name in ("__init__.py", "__main__.py"):
                continue
            folder = path.parent
            if folder != ROOT / top and f"{folder.name}/" not in named:
                missing.append(f"{folder.relative_to(ROOT)}/")
            if path.name not in named and path.parent.name not in ("keyvault", "host", "stack"):
                missing.append(str(path.relative_to(ROOT)))
    assert sorted(set(missing)) == []


def test_the_layout_map_check_sees_an_omission() -> None:
    named = set(re.findall(r"[\w.]+/?", "shared/core/\n  clock.py   the clock\n"))
    assert "clock.py" in named
    assert "core/" in named
    assert "records.py" not in named


# The publishing instructions: tests/e2e/test_readme_publish.py runs every marked block of these.
PUBLISHING = ("### The upload API: twine, uv publish, poetry publish", "### Publishing from CI")


@pytest.mark.parametrize("heading", PUBLISHING)
def test_every_code_block_of_the_publishing_instructions_is_a_marked_snippet(heading: str) -> None:
    text = subsection(heading)
    assert snippets(text), f"{heading}: no snippet left to run"
    assert unmarked(text) == []


def test_the_snippet_check_sees_an_unmarked_block_and_a_stray_marker() -> None:
    marked = "<!-- snippet: a -->\n```sh\ntrue\n```\n<!-- /snippet -->\n"
    assert unmarked(marked) == []
    assert unmarked(marked + "\n```sh\nfalse\n```\n") != []
    assert unmarked(marked + "<!-- snippet: b -->\n") != []
    assert unmarked(marked + marked) == ["snippet name used twice: a"]


def test_the_ci_snippets_read_as_steps_and_pin_twine_as_requirements_dev_does() -> None:
    pins = re.findall(r"^twine==(\S+)$", (ROOT / "requirements-dev.txt").read_text(), re.M)
    assert len(pins) == 1
    steps = [ci_step(s.body) for s in snippets(subsection(PUBLISHING[1])).values()]
    assert [step.shell_key for step in steps] == ["run", "run", "script"]
    installs = re.findall(r"pip install twine==(\S+)", "".join(step.body for step in steps))
    assert installs
    assert set(installs) == set(pins)  # the README cannot drift from the pin


def test_the_ci_step_reader_refuses_what_it_does_not_know() -> None:
    step = ci_step("- name: x\n  env:\n    A: b\n  run: |\n    one\n\n    two\n")
    assert step.env == {"A": "b"}
    assert step.body == "one\n\ntwo\n"
    for text in (
        "name: x\n  run: y\n",  # not a list item
        "- run: y\n  shell: pwsh\n",  # a key that changes how it runs
        "- run: 'quoted'\n",
        '- run: y\n  env:\n    A: "quoted"\n',
        "- run: y # a comment\n",
        "- run: y\n  run: z\n",
        "- name: x\n",  # no run or script
        "- run: >\n    folded\n",
    ):
        with pytest.raises(CiStepError):
            ci_step(text)

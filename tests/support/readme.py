"""README.md's marked snippets, for the tests that run them and the fast-tier check that every
code block of a run section is marked.

A snippet is a fenced block between `<!-- snippet: NAME -->` (or `<!-- snippet: NAME (not
run: WHY) -->`) and `<!-- /snippet -->`. `ci_step` reads one CI step of the shapes the README
shows (GitHub Actions and Azure Pipelines), strictly: PyYAML is not among this checkout's
dependencies, and a shape this reader does not know is refused rather than guessed at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SNIPPET = re.compile(
    r"<!-- snippet: (?P<name>[a-z0-9-]+)(?: \((?P<why>[^)]*)\))? -->\n"
    r"```(?P<lang>\w*)\n(?P<body>.*?)```\n<!-- /snippet -->\n",
    re.S,
)


@dataclass(frozen=True)
class Snippet:
    name: str
    lang: str
    body: str
    why_not_run: str | None


def subsection(heading: str, text: str | None = None) -> str:
    """The text under `heading` (a whole heading line, `### Title`) up to the next heading of
    its level or above; lines inside fenced blocks are never headings."""
    lines = (README.read_text(encoding="utf-8") if text is None else text).splitlines(True)
    level = len(heading) - len(heading.lstrip("#"))
    starts = [i for i, line in enumerate(lines) if line.rstrip("\n") == heading]
    assert len(starts) == 1, f"README.md has {len(starts)} headings {heading!r}"
    fenced = False
    for end in range(starts[0] + 1, len(lines)):
        line = lines[end]
        fenced ^= line.startswith("```")
        hashes = len(line) - len(line.lstrip("#"))
        if not fenced and 1 <= hashes <= level and line[hashes : hashes + 1] == " ":
            return "".join(lines[starts[0] + 1 : end])
    return "".join(lines[starts[0] + 1 :])


def snippets(text: str) -> dict[str, Snippet]:
    return {
        m["name"]: Snippet(m["name"], m["lang"], m["body"], m["why"])
        for m in SNIPPET.finditer(text)
    }


def unmarked(text: str) -> list[str]:
    """What is wrong with `text`'s marking: a name used twice, a fenced block outside a snippet,
    a marker that does not frame a block."""
    names = [m["name"] for m in SNIPPET.finditer(text)]
    problems = [
        f"snippet name used twice: {n}" for n in sorted({n for n in names if names.count(n) > 1})
    ]
    rest = SNIPPET.sub("", text)
    if "```" in rest:
        problems.append("a fenced block without <!-- snippet: NAME --> ... <!-- /snippet -->")
    if "<!-- snippet" in rest or "<!-- /snippet" in rest:
        problems.append("a snippet marker that frames no fenced block")
    return problems


def localize(text: str, authority: str) -> str:
    """The README's example host made the local one (`127.0.0.1:PORT`), over plain HTTP."""
    return text.replace("https://", "http://").replace("pkgs.example.com", authority)


# ---------------------------------------------------------------- CI steps


@dataclass(frozen=True)
class CiStep:
    """One step: a GitHub Actions `run` step or an Azure Pipelines `script` step."""

    fields: dict[str, str]  # the scalar keys (name, displayName, run or script)
    env: dict[str, str]
    shell_key: str  # "run" or "script"

    @property
    def body(self) -> str:
        return self.fields[self.shell_key]


class CiStepError(ValueError):
    """A CI snippet of a shape `ci_step` does not read."""


KEYS = {"name", "displayName", "env", "run", "script"}
KEY = re.compile(r"(?P<key>[A-Za-z_][A-Za-z0-9_]*):(?: (?P<value>.*))?$")
# What a plain scalar of this reader may not start with or hold: YAML would read these
# otherwise (quotes, flow collections, anchors, tags, block indicators, comments, a nested key).
NOT_PLAIN = re.compile(r"""^[-?:,\[\]{}#&*!|>'"%@`]|: |\s#|:$""")


def ci_step(text: str) -> CiStep:
    """Read a one-step YAML list: `- key: value` pairs at one indent, `env` a mapping of plain
    scalars one level in, a value `|` a literal block. Anything else is a CiStepError."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("- "):
        raise CiStepError("not a one-step list: the first line must start with '- '")
    lines[0] = "  " + lines[0][2:]
    fields: dict[str, str] = {}
    env: dict[str, str] = {}
    at = 0
    while at < len(lines):
        key, value = _key_value(lines[at], indent=2)
        if key not in KEYS or key in fields or (key == "env" and env):
            raise CiStepError(f"unknown or repeated key {key!r}")
        at += 1
        if key == "env":
            if value:
                raise CiStepError("env must be a block mapping")
            while at < len(lines) and _indent(lines[at]) == 4:
                name, setting = _key_value(lines[at], indent=4)
                if name in env:
                    raise CiStepError(f"env {name} given twice")
                env[name] = _plain(setting)
                at += 1
            if not env:
                raise CiStepError("an empty env")
        elif value == "|":
            fields[key], at = _literal_block(lines, at)
        else:
            fields[key] = _plain(value)
    shells = [key for key in ("run", "script") if key in fields]
    if len(shells) != 1:
        raise CiStepError("a step needs exactly one of run or script")
    return CiStep(fields, env, shells[0])


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _key_value(line: str, indent: int) -> tuple[str, str]:
    found = KEY.match(line[indent:]) if _indent(line) == indent else None
    if found is None:
        raise CiStepError(f"not a `key: value` line at indent {indent}: {line!r}")
    return found["key"], (found["value"] or "").strip()


def _plain(value: str) -> str:
    if not value or NOT_PLAIN.search(value):
        raise CiStepError(f"not a plain scalar this reader knows: {value!r}")
    return value


def _literal_block(lines: list[str], at: int) -> tuple[str, int]:
    """A `|` block (clip chomping): its lines dedented by the first line's indent, one final
    newline; returns the block and the index of the line after it."""
    start = at
    while at < len(lines) and (not lines[at].strip() or _indent(lines[at]) > 2):
        at += 1
    block = lines[start:at]
    content = [line for line in block if line.strip()]
    if not content:
        raise CiStepError("an empty literal block")
    indent = _indent(content[0])
    if any(_indent(line) < indent for line in content):
        raise CiStepError("a literal block line indented less than its first line")
    return "\n".join(line[indent:] for line in block).rstrip("\n") + "\n", at

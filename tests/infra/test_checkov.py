"""checkov scans infra/ offline: every file parses, no check fails, every waiver is justified.

checkov lives in its own virtualenv (`make infra-tools` creates .venv-checkov; it pins an old
`packaging`). Without it these tests are skipped on a workstation and fail in CI (`CI` set).

checkov exits 0 even when it cannot parse a Bicep file (the file is listed under parsing
errors and simply not scanned), so the tests read its JSON report rather than trust the exit
status, and also ask checkov's own parser about each file.

Waivers are `// checkov:skip=CKV_ID:reason` comments inside the resource they waive; checkov
honours them only there. Each must name a check checkov really skipped, with a reason.

The Microsoft Graph module (entra.bicep) is left out of the scan (`--skip-path`): checkov's parser
reads neither its `extension` statement nor `deployer()`, and checkov has no check for any
Microsoft.Graph type, which a test below keeps true. tests/infra asserts that file instead.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests.infra import bicep

VENV = bicep.ROOT / ".venv-checkov"
CHECKOV = VENV / "bin" / "checkov"
# No network: no policy download (--skip-download), no update check, no platform mapping.
OFFLINE_ENV = {"CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "BC_SKIP_MAPPING": "TRUE"}
WAIVER = re.compile(r"//\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?$")
MIN_REASON = 20  # characters: a reason, not a shrug
# checkov's --skip-path is a regular expression over the paths it walks.
SKIP_GRAPH = "(" + "|".join(re.escape(p.name) for p in bicep.graph_files()) + ")$"

# Runs checkov, an external tool in a virtualenv of its own: the integration tier.
pytestmark = pytest.mark.integration


class Waiver(NamedTuple):
    file: str
    line: int
    check: str
    resource: str
    reason: str


def require_checkov() -> None:
    """Skip without checkov on a workstation; in CI its absence is a failure."""
    if CHECKOV.exists():
        return
    message = (
        f"checkov is not installed at {CHECKOV.relative_to(bicep.ROOT)}: run `make infra-tools`"
    )
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def checkov(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """checkov's bicep framework, offline, run in a scratch directory."""
    return subprocess.run(
        [str(CHECKOV), "--framework", "bicep", "--skip-download", *args],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp,
        env={**os.environ, **OFFLINE_ENV},
        check=False,
    )


def run_checkov(tmp: Path, directory: Path = bicep.INFRA) -> dict[str, Any]:
    """checkov's JSON report for the Bicep files in a directory (infra/), offline."""
    result = checkov(
        tmp, "--directory", str(directory), "--output", "json", "--compact",
        "--skip-path", SKIP_GRAPH,
    )  # fmt: skip
    assert result.returncode in (0, 1), f"checkov crashed ({result.returncode}): {result.stderr}"
    report = json.loads(result.stdout)
    # One framework gives one report; an empty scan gives just a summary.
    assert isinstance(report, dict), f"checkov ran more than the bicep framework: {report}"
    assert "results" in report, f"checkov scanned nothing: {report}"
    return report


class Reports(NamedTuple):
    waived: dict[str, Any]
    unwaived: dict[str, Any]


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Reports:
    """The report for infra/, and for copies of its files with every waiver disarmed (same
    line numbers). Both scans at once: each is seconds of one core."""
    require_checkov()
    copies = tmp_path_factory.mktemp("unwaived")
    for path in bicep.bicep_files():
        (copies / path.name).write_text(path.read_text().replace("checkov:skip=", "waived="))
    with ThreadPoolExecutor(max_workers=2) as pool:
        waived = pool.submit(run_checkov, tmp_path_factory.mktemp("checkov"))
        unwaived = pool.submit(run_checkov, tmp_path_factory.mktemp("checkov"), copies)
        return Reports(waived.result(), unwaived.result())


@pytest.fixture(scope="module")
def report(reports: Reports) -> dict[str, Any]:
    return reports.waived


@pytest.fixture(scope="module")
def unwaived_report(reports: Reports) -> dict[str, Any]:
    return reports.unwaived


@functools.cache  # the files do not change during a run, and each parse takes a second
def waivers() -> tuple[Waiver, ...]:
    """Every `checkov:skip` comment in the Bicep files, with the resource it sits in."""
    found = []
    for path in bicep.bicep_files():
        spans = bicep.resource_lines(path)
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            match = WAIVER.search(line)
            if not match:
                continue
            inside = [name for name, span in spans.items() if number in span]
            resource = inside[0] if len(inside) == 1 else ""
            reason = (match.group(2) or "").strip()
            found.append(Waiver(f"/{path.name}", number, match.group(1), resource, reason))
    return tuple(found)


def symbolic_name(record: dict[str, Any]) -> str:
    """checkov names a resource `Microsoft.Web/sites.functionApp`: the part after the last dot."""
    return str(record["resource"]).rsplit(".", 1)[1]


@pytest.mark.parametrize("path", bicep.checkov_files(), ids=lambda p: p.name)
def test_checkovs_own_parser_reads_the_file(path: Path) -> None:
    """checkov parses Bicep with an older pycep-parser than ours; ask that one directly."""
    require_checkov()
    probe = (
        "import sys; from pathlib import Path; from checkov.bicep.parser import Parser\n"
        "template, _ = Parser().parse(Path(sys.argv[1]))\n"
        "print(len(template['resources']) if template else -1)"
    )
    result = subprocess.run(
        [str(VENV / "bin" / "python"), "-c", probe, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **OFFLINE_ENV},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) == len(bicep.parse(path)["resources"]), (
        f"checkov's parser cannot read {path.name} (or reads it differently)"
    )


def test_no_parsing_errors(report: dict[str, Any]) -> None:
    assert report["results"]["parsing_errors"] == []
    assert report["summary"]["parsing_errors"] == 0


def test_no_failed_checks(report: dict[str, Any]) -> None:
    failed = [
        f"{r['check_id']} {r['resource']} ({r['file_path']}): {r['check_name']}"
        for r in report["results"]["failed_checks"]
    ]
    assert failed == []
    assert report["summary"]["failed"] == 0


def test_checks_ran(report: dict[str, Any]) -> None:
    assert report["summary"]["passed"] >= 20


def test_checkov_has_no_check_for_microsoft_graph_types(tmp_path: Path) -> None:
    """What skipping the Graph module costs: nothing, as long as checkov checks no Graph type."""
    require_checkov()
    listed = checkov(tmp_path, "--list")
    assert listed.returncode == 0, listed.stderr
    entities = re.findall(r"\|\s*(Microsoft\.[A-Za-z]+/[\w/.]+)\s*\|", listed.stdout)
    assert len(entities) >= 100, "checkov --list gave no resource checks to look at"
    assert not [e for e in entities if e.startswith("Microsoft.Graph/")]


def test_every_waiver_sits_in_one_resource_and_gives_a_reason() -> None:
    for waiver in waivers():
        assert waiver.resource, f"{waiver.file}:{waiver.line} is outside any resource"
        assert len(waiver.reason) >= MIN_REASON, f"{waiver.file}:{waiver.line} gives no reason"


def test_waivers_are_exactly_the_checks_checkov_skipped(report: dict[str, Any]) -> None:
    """No stale waiver (for a check that no longer fires) and no skip without a waiver."""
    skipped = {
        (r["file_path"], r["check_id"], symbolic_name(r)): r["check_result"]["suppress_comment"]
        for r in report["results"]["skipped_checks"]
    }
    written = {(w.file, w.check, w.resource): w.reason for w in waivers()}
    assert skipped == written


def test_every_waiver_is_needed(unwaived_report: dict[str, Any]) -> None:
    """Without the waivers, exactly the waived checks fail: none waives a passing check."""
    failing = {
        (r["file_path"], r["check_id"], symbolic_name(r))
        for r in unwaived_report["results"]["failed_checks"]
    }
    assert failing == {(w.file, w.check, w.resource) for w in waivers()}

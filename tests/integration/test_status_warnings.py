"""`wheelvault status` shows what the validator found odd about a published file (its record's
`warnings`), against Azurite."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from devhost.cli import index as cli_index
from devhost.wheels import build_wheel
from shared.adapters.blobstore import BlobStore
from shared.core import layout
from shared.core.records import FileRecord
from shared.services import publish as publish_service
from tests.integration.test_publish import blob, publish

pytestmark = pytest.mark.integration


def test_status_prints_a_published_files_warnings(
    storage_env: BlobStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store = storage_env
    original = publish_service.inspect_distribution

    def inspect_with_warnings(*args: Any, **kwargs: Any) -> Any:
        info = original(*args, **kwargs)
        if info.version == "1.0":
            return dataclasses.replace(info, warnings=("odd thing one", "odd thing two"))
        return info

    monkeypatch.setattr(publish_service, "inspect_distribution", inspect_with_warnings)
    odd, plain = build_wheel("odd", "1.0"), build_wheel("odd", "2.0")
    publish(store, odd)
    publish(store, plain)
    record = FileRecord.from_json(
        blob(store, layout.INDEX, layout.record_path("odd", odd.filename))  # type: ignore[arg-type]
    )
    assert record.warnings == ("odd thing one", "odd thing two")

    assert cli_index._report(store, [odd.filename, plain.filename], timeout=5) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{odd.filename}: published (warnings: odd thing one; odd thing two)",
        f"{plain.filename}: published",
    ]

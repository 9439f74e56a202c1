"""The per-file record: what the index knows about one published file.

Records are the source of truth. Pages are derived from them and can always be rebuilt
(`reindex`), so a record carries everything a page shows.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Self

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.core.clock import iso_z
from shared.core.distribution import is_sdist

SHA256_PATTERN = r"^[0-9a-f]{64}$"
Sha256 = Annotated[str, Field(pattern=SHA256_PATTERN)]


class FileRecord(BaseModel):
    """One published distribution file. Immutable; changes (yank) write a new record.

    `metadata_sha256`: the hash of a wheel's METADATA, served as its PEP 658 `.metadata`
    file. An sdist has none (`null`); records written before sdists existed keep validating,
    so `record_version` stays 1.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    record_version: int = 1
    project: str
    name: str
    version: str
    filename: str
    sha256: str = Field(pattern=SHA256_PATTERN)
    size: int = Field(ge=0)
    upload_time: datetime
    requires_python: str | None = None
    metadata_sha256: Sha256 | None = None
    yanked: bool = False
    yanked_reason: str | None = None
    source: str = ""
    warnings: tuple[str, ...] = ()  # what the validator found odd but harmless

    @field_validator("project")
    @classmethod
    def _normalised(cls, value: str) -> str:
        if canonicalize_name(value) != value:
            raise ValueError(f"project {value!r} is not normalised")
        return value

    @field_validator("version")
    @classmethod
    def _pep440(cls, value: str) -> str:
        try:
            Version(value)
        except InvalidVersion as error:
            raise ValueError(f"version {value!r} is not PEP 440") from error
        return value

    @field_validator("upload_time")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("upload_time must carry a timezone")
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _metadata_for_wheels_only(self) -> Self:
        # A page links a wheel's `.metadata` file by this hash; an sdist has no such file.
        if (self.metadata_sha256 is None) != is_sdist(self.filename):
            kind = "an sdist has no" if is_sdist(self.filename) else "a wheel needs its"
            raise ValueError(f"{self.filename!r}: {kind} metadata_sha256")
        return self

    @property
    def normalized_project(self) -> NormalizedName:
        return canonicalize_name(self.project)

    @property
    def parsed_version(self) -> Version:
        return Version(self.version)

    def to_json(self) -> bytes:
        return self.model_dump_json(indent=2).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes) -> FileRecord:
        return cls.model_validate_json(data)

    def with_yank(self, *, yanked: bool, reason: str | None) -> FileRecord:
        return self.model_copy(
            update={"yanked": yanked, "yanked_reason": (reason or "") if yanked else None}
        )


def format_upload_time(moment: datetime) -> str:
    """PEP 700's `upload-time` format: yyyy-mm-ddThh:mm:ss.ffffffZ, always UTC."""
    return iso_z(moment, "microseconds")

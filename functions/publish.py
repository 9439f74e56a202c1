"""Blob trigger: every new blob in `uploads` is validated and published (or quarantined)."""

from __future__ import annotations

import azure.functions as func

from shared.core import layout
from shared.services.wiring import get_services
from shared.settings import STORAGE_CONNECTION

bp = func.Blueprint()  # type: ignore[no-untyped-call]  # the SDK leaves __init__ unannotated


def upload_name(blob_path: str | None) -> str:
    """`uploads/{name}` as the host reports it → `{name}`."""
    path = blob_path or ""
    prefix = f"{layout.UPLOADS}/"
    return path[len(prefix) :] if path.startswith(prefix) else path


@bp.function_name("publish_upload")
@bp.blob_trigger(
    arg_name="upload",
    path=f"{layout.UPLOADS}/{{name}}",
    connection=STORAGE_CONNECTION,
    source=func.BlobSource.EVENT_GRID,
)
def publish_upload(upload: func.InputStream) -> None:
    # Rejections are handled (quarantined) inside; storage errors raise so the platform retries.
    etag = (getattr(upload, "blob_properties", None) or {}).get("ETag")
    get_services().publisher.publish_upload(upload_name(upload.name), upload, etag=etag)

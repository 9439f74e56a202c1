"""Reach the registered functions of `function_app.app` the way the host does.

`FunctionApp.get_functions()` validates name uniqueness each time it is called and refuses a
second call, so the list is built once per process and shared.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

import azure.functions as func

from function_app import app

_lock = threading.Lock()


@functools.cache
def _registered() -> dict[str, Any]:
    return {str(f.get_function_name()): f for f in app.get_functions()}


def registered() -> dict[str, Any]:
    with _lock:  # functools.cache alone lets two threads build it at once
        return _registered()


def function(name: str) -> Any:
    return registered()[name]


def handler(name: str) -> Callable[..., Any]:
    return function(name).get_user_function()  # type: ignore[no-any-return]


def blob_event(container: str, name: str, data: bytes, etag: str | None) -> func.InputStream:
    """The InputStream the host passes a blob trigger: path, length, properties and the bytes."""
    return func.blob.InputStream(
        data=data,
        name=f"{container}/{name}",
        length=len(data),
        uri=f"http://127.0.0.1/devstoreaccount1/{container}/{name}",
        blob_properties={"ETag": etag, "Length": len(data)} if etag else {"Length": len(data)},
        metadata={},
    )

"""The whole local system (``make run``): Azurite, the Key Vault stand-in, the functions host.

``python -m devhost.stack`` supervises them; tests use :class:`Stack` directly or run the module
as a subprocess with ``--root`` in a temporary directory and free ports. See ``core.py``.
"""

from __future__ import annotations

from devhost.stack.children import (
    AlreadyRunning,
    Cancelled,
    ChildFailed,
    PortInUse,
    StackError,
)
from devhost.stack.config import DEFAULT_PORTS, Ports, StackPaths
from devhost.stack.provision import PUBLISHER, READER
from devhost.stack.supervisor import Stack

__all__ = [
    "DEFAULT_PORTS",
    "PUBLISHER",
    "READER",
    "AlreadyRunning",
    "Cancelled",
    "ChildFailed",
    "PortInUse",
    "Ports",
    "Stack",
    "StackError",
    "StackPaths",
]

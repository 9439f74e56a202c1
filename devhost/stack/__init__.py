"""The whole local system (``make run``): Azurite, the Key Vault and Entra ID stand-ins, the
functions host.

``python -m devhost.stack`` supervises them (``__main__.py``); tests use :class:`Stack`
(``supervisor.py``) directly or run the module as a subprocess with ``--root`` in a temporary
directory and free ports.
"""

from __future__ import annotations

from devhost.stack.children import StackError
from devhost.stack.config import Ports
from devhost.stack.provision import PUBLISHER, READER
from devhost.stack.supervisor import Stack

__all__ = ["PUBLISHER", "READER", "Ports", "Stack", "StackError"]

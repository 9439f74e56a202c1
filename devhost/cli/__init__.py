"""The `wheelvault` command: the operator's tool for a running index, local or in Azure.

It publishes (upload SAS), inspects (status) and manages (yank, delete, reindex, tokens) an index
through the same services the deployed app uses; unlike the stand-ins beside it, it is meant for
deployed apps as much as for `make run`.
"""

from devhost.cli.main import main

__all__ = ["main"]

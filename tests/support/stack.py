"""The whole app on the local functions host, in this process, for end-to-end tests: Azurite's
containers emptied and made again, the settings pointing at Azurite and the Key Vault
stand-in, the host on a free port; afterwards the host stopped and the settings restored."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from azure.storage.blob import BlobServiceClient

from devhost.standins.azurite import API_VERSION, Azurite
from devhost.standins.host.localhost import LocalHost
from shared.adapters.blobstore import BlobStore
from shared.core import layout
from shared.services.wiring import reset_services
from tests.fixtures.vault import VaultStandinProcess
from tests.support.functions import registered


@contextmanager
def local_app(
    azurite: Azurite, vault_standin: VaultStandinProcess
) -> Iterator[tuple[LocalHost, BlobStore]]:
    """The running host and a store on the same (empty) containers."""
    service = BlobServiceClient.from_connection_string(
        azurite.connection_string, api_version=API_VERSION
    )
    store = BlobStore(service)
    for name in layout.CONTAINERS:
        if service.get_container_client(name).exists():
            service.delete_container(name)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("WHEELVAULT_STORAGE", azurite.connection_string)
        env.setenv("WHEELVAULT_STORAGE_API_VERSION", API_VERSION)
        env.setenv("WHEELVAULT_VAULT_URL", vault_standin.url)
        env.setenv("WHEELVAULT_VAULT_CREDENTIAL", "local")
        env.setenv("WHEELVAULT_VAULT_CA_BUNDLE", str(vault_standin.ca_path))
        reset_services()
        store.ensure_containers(layout.CONTAINERS)
        host = LocalHost(functions=registered().values(), port=0, load_settings=False).start()
        try:
            yield host, store
        finally:
            host.stop()
            reset_services()

"""A local stand-in for the Azure Key Vault secrets REST API, for development and tests.

The real ``azure.keyvault.secrets.SecretClient`` works against it unchanged::

    with VaultStandin(Path(".local/keyvault")) as vault:
        client = SecretClient(
            vault.url,
            LocalVaultCredential(),
            verify_challenge_resource=False,
            connection_verify=str(vault.ca_path),
        )

or as a process: ``python -m devhost.standins.keyvault --port 8443 --data-dir .local/keyvault``.
"""

from .credential import LocalVaultCredential
from .server import StandinStartError, VaultStandin

__all__ = ["LocalVaultCredential", "StandinStartError", "VaultStandin"]

"""A local stand-in for Microsoft Entra ID: a tenant with wheelvault's app and named principals.

It serves what wheelvault and its clients use of Entra, over HTTPS with its own CA: the OpenID
configuration (v2 and v1), the signing keys (JWKS, with rotation), the client-credentials token
endpoint (the real ``ClientSecretCredential`` signs in against it) and App Service's
managed-identity endpoint (the real ``DefaultAzureCredential`` gets tokens from it)::

    with EntraStandin(Path(".local/entra")) as entra:
        reader = entra.principals["reader"]
        credential = ClientSecretCredential(
            entra.tenant_id, reader.client_id, reader.client_secret,
            authority=entra.url, disable_instance_discovery=True,
            connection_verify=str(entra.ca_path),
        )
        token = credential.get_token(entra.scope).token

or as a process: ``python -m devhost.standins.entra --port 8444 --data-dir .local/entra``.
"""

from .principals import LocalPrincipal
from .server import EntraStandin

__all__ = ["EntraStandin", "LocalPrincipal"]

"""wheelvault-keyring: Microsoft Entra ID access tokens for wheelvault indexes, through keyring.

pip, uv and twine ask keyring for a password; for the origins listed in
``WHEELVAULT_KEYRING_INDEXES`` this backend answers with a fresh access token from
azure-identity's DefaultAzureCredential, and for any other host it answers nothing.
``python -m wheelvault_keyring check URL`` shows what a URL would get.
"""

__version__ = "0.1.0"

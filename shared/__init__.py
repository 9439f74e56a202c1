"""wheelvault: a private Python package index on Azure Functions, Blob Storage and Key Vault."""

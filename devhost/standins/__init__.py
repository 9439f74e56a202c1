"""Local stand-ins for the Azure services wheelvault runs on, for `make run` and the tests.

``host`` stands in for the Azure Functions host (runs ``function_app.app``: HTTP routes, blob
triggers, timers), ``keyvault`` for Key Vault's secrets REST API over HTTPS, ``azurite`` starts
Azurite (Microsoft's storage emulator, from npm). None of it is deployed.
"""

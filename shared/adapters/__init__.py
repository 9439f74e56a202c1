"""Adapters: the only modules that import the Azure SDKs."""

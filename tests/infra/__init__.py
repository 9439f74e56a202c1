"""Offline checks of the Bicep in infra/ and the files that deploy it."""

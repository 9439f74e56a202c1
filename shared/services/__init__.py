"""Use cases built from the pure core and the adapters."""

"""The pure core: wheel inspection, page rendering and policies. No Azure imports, no I/O."""

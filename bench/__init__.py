"""Benchmarks. Each writes its figures to bench/results/*.json and prints a table."""

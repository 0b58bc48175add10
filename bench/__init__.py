"""Benchmarks, run by hand (see docs/benchmarks.md); not part of the test suite."""

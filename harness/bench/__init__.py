"""Benchmarks of the harness's own speed. Each module has a function returning a dict of figures and a
``python -m harness.bench.<module>`` entry that prints them."""

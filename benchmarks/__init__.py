"""Benchmarks of the webhook path and of checkout session creation: ``python -m benchmarks``."""

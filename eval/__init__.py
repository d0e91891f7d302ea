"""Evaluation harness: pass rate, coverage, mutation score and latency of generated tests."""

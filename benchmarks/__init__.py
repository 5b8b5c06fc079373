"""Benchmarks: scripts and (later) papermill-parameterised notebooks that write result tables."""

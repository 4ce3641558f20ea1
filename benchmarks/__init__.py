"""Benchmarks of the `my_docker` orchestrator against ZenML's built-in `local_docker`.

Run ``python -m benchmarks.run_benchmarks`` (see benchmarks/README.md).
"""

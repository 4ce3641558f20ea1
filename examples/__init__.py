"""Example pipelines used by the demo, the tests and the benchmarks."""

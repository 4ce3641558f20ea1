"""Teaching: what the tutorial notebooks and the demo use.

- `notebooks`: helpers the notebooks share (private workspace, drawings);
- `examples`: small example pipelines (also used by tests and benchmarks);
- `demo`: ``python -m orchestrator.demo``, the example pipeline on `my_stack`.
"""

"""Teaching: what the tutorial notebooks and the demo use.

- `notebooks`: helpers the notebooks share (private workspace, registration, drawings);
- `my_file`: the reader's own orchestrator, ``my_orchestrator.py``, assembled per
  notebook from `scaffolds/stageN.py` and the reader's pieces, checked by `checks`
  (with `method_checks`, `flavor_checks` and the property-based `properties`;
  reference answers in `solutions`, and in `class_solutions` for the flavor's classes);
- `share`: ``python -m orchestrator.teaching.share``, how much of the final file the reader writes;
- `pictures`, `timing`: the tutorial's pictures and measured timelines;
- `examples`, `dynamic_examples`: small example pipelines (also used by tests and benchmarks);
- `demo`: ``python -m orchestrator.teaching.demo``, the example pipeline on `my_stack`.
"""

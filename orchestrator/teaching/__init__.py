"""Teaching: what the tutorial notebooks and the demo use.

- `notebooks`: helpers the notebooks share (private workspace, registration, drawings);
- `my_file`: the reader's own orchestrator, ``my_orchestrator.py``, as a notebook grows
  it: the plan of its pieces (`piece_plan`), read from the exercise cells
  (`exercise_cells`) of this and the saved notebooks (`reader_answers`), each run on
  its own and checked (`checked_pieces`), and put into `scaffolds/stageN.py`
  (`assembly`);
- `checks`: the exercises' checks (with `flavor_checks`, the methods' checks gathered by
  `method_checks`, and the property-based `properties`); reference answers in
  `solutions`, and in `class_solutions` for the flavor's classes;
- `share`: ``python -m orchestrator.teaching.share``, how much of the final file the reader writes;
- `pictures`, `timing`: the tutorial's pictures and measured timelines;
- `examples`, `dynamic_examples`: small example pipelines (also used by tests and benchmarks);
- `demo`: ``python -m orchestrator.teaching.demo``, the example pipeline on `my_stack`.
"""

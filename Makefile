# The two commands a newcomer needs (see README.md):
#   make demo   set everything up, then run the example pipeline on my_stack
#   make test   set everything up, then run the whole test suite
#   make swarm  (as root) start the local two-node swarm the my_swarm tests and notebook 8 use;
#               make swarm-down ends it
PYTHON ?= python3
export ZENML_ANALYTICS_OPT_IN ?= false

.PHONY: setup demo test unit lint lab swarm swarm-down

setup:
	bash scripts/setup.sh

demo: setup
	$(PYTHON) -m orchestrator.teaching.demo

test:
	bash scripts/setup.sh --browser --swarm
	$(PYTHON) -m ruff check orchestrator tests benchmarks
	@# Both suites run even when the first fails; the target fails if either did.
	$(PYTHON) -m pytest tests --durations=20; tests=$$?; \
	$(PYTHON) -m pytest --nbmake --nbmake-timeout=600 --durations=0 notebooks/; notebooks=$$?; \
	echo "make test: tests exit $$tests, notebooks exit $$notebooks"; \
	[ $$tests = 0 ] && [ $$notebooks = 0 ]

# Only the fast tests that need no Docker engine.
unit:
	$(PYTHON) -m pytest tests/test_dag.py tests/test_container_spec.py tests/test_step_logs.py tests/test_status.py tests/test_widget.py tests/test_layout.py -q -k "not on_docker"

# The lint rules kept clean (pyproject.toml, [tool.ruff]).
lint:
	$(PYTHON) -m ruff check orchestrator tests benchmarks

lab: setup
	$(PYTHON) -m jupyter lab notebooks/

# The local Docker Swarm (two engines in a private network namespace, a registry):
# started as root, used by everyone in the docker group.
swarm:
	bash scripts/setup.sh --swarm

swarm-down:
	$(PYTHON) -m orchestrator.machine.swarm down

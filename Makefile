# The commands a newcomer needs (see README.md):
#   make demo   set everything up, then run the example pipeline on my_stack
#   make test   set everything up, then run the whole test suite and every notebook
#   make check  lint and every test that needs no Docker engine (under 2 minutes)
#   make swarm  (as root) start the local two-node swarm the my_swarm tests and notebook 8 use;
#               make swarm-down ends it
PYTHON ?= python3
export ZENML_ANALYTICS_OPT_IN ?= false

.PHONY: setup demo test check lint lab swarm swarm-down

# Tests and notebooks run in one parallel session (pytest-xdist): most of their time
# is spent waiting on containers, so more workers than cores pay off. Each test file
# and each notebook runs on one worker (a module's shared pipeline run is made once),
# the longest first (tests/conftest.py). TEST_WORKERS=0 runs everything in this process.
TEST_WORKERS ?= 3
PARALLEL = -n $(1) --dist loadgroup --no-loadscope-reorder

test:
	bash scripts/setup.sh --browser --swarm
	$(PYTHON) -m ruff check orchestrator tests benchmarks
	@# Every test and every notebook; ends with the 25 slowest items and each notebook's time.
	$(PYTHON) -m pytest tests notebooks --nbmake --nbmake-timeout=600 --ignore-glob='tests/browser/*.ipynb' \
		$(call PARALLEL,$(TEST_WORKERS)) --durations=25

# Lint and every test that needs no Docker engine: the fast tier while working
# on the code (no engine has to run; under 2 minutes on 2 cores).
check: lint
	$(PYTHON) -m pytest tests -m "not engine and not needs_root and not rootless_engine and not root_pass" -q $(call PARALLEL,2) --durations=10
	@echo "make check left out the tests that need a Docker engine (marked engine), root (needs_root)"
	@echo "and CI's root and rootless passes: make test runs the engine tests and every notebook;"
	@echo "one file's engine tests: python -m pytest -m engine tests/test_pipelines_on_docker.py"

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

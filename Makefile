# The two commands a newcomer needs (see README.md):
#   make demo   set everything up, then run the example pipeline on my_stack
#   make test   set everything up, then run the whole test suite
PYTHON ?= python3
export ZENML_ANALYTICS_OPT_IN ?= false

.PHONY: setup demo test unit lab

setup:
	bash scripts/setup.sh

demo: setup
	$(PYTHON) -m orchestrator.demo

test:
	bash scripts/setup.sh --browser
	$(PYTHON) -m pytest tests
	$(PYTHON) -m pytest --nbmake --nbmake-timeout=600 notebooks/

# Only the fast tests that need no Docker engine.
unit:
	$(PYTHON) -m pytest tests/test_dag.py tests/test_container_spec.py tests/test_status.py tests/test_widget.py -q -k "not on_docker"

lab: setup
	$(PYTHON) -m jupyter lab notebooks/

"""`python -m orchestrator.engine`: the older name of `python -m orchestrator.machine.engine`."""

import runpy

if __name__ == "__main__":
    runpy.run_module("orchestrator.machine.engine", run_name="__main__")

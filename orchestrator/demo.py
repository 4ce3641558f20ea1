"""`python -m orchestrator.demo`: the older name of `python -m orchestrator.teaching.demo`."""

import runpy

if __name__ == "__main__":
    runpy.run_module("orchestrator.teaching.demo", run_name="__main__")

"""`python -m orchestrator.base_image`: the older name of `python -m orchestrator.machine.base_image`."""

import runpy

if __name__ == "__main__":
    runpy.run_module("orchestrator.machine.base_image", run_name="__main__")

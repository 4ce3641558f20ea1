"""`python -m orchestrator.status [RUN|latest] [--follow] [--next] [--logs]`."""

import sys

from orchestrator.status.cli import main

sys.exit(main())

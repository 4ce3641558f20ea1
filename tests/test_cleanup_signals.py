"""Signals while a run is cleaned up (fault 8 of issue 19): pure, no Docker needed.

The real-engine case (Ctrl-C three times while two steps take 1.8 s to stop)
is in test_public_report_faults.py.
"""

import os
import signal
import time

from orchestrator.running.signals import signals_hurry


def test_repeated_signals_during_the_cleanup_hurry_it_instead_of_breaking_it():
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    told = []
    finished = False
    with signals_hurry(told.append):
        for sig in (signal.SIGINT, signal.SIGINT, signal.SIGTERM):
            os.kill(os.getpid(), sig)
            time.sleep(0.05)  # a KeyboardInterrupt would be raised here
        finished = True
    assert finished
    assert told == ["SIGINT", "SIGINT", "SIGTERM"]
    assert {sig: signal.getsignal(sig) for sig in before} == before  # handlers restored

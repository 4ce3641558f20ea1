"""Which steps' containers to start before their upstream steps succeeded (pure rules).

A step container spends most of a trivial step's life importing Python
packages and preparing ZenML (about 2 of its 3 seconds here). Started early,
it does that while its upstream steps still run, then waits at its gate
(see `step_entrypoint` and `gates`) until they succeeded: the step itself
starts no earlier than before, its container is just ready.

The rules, kept here apart from the runner so that they are unit-tested:

- only first attempts start early (a retry gets a fresh container when it is due);
- a step starts early when each of its upstream steps runs, completed, or
  has a container started early itself: first the steps one level below a
  running step, then the next level, and so on (breadth first, so the
  containers needed soonest come first);
- `max_parallelism` bounds all the step containers that exist at once,
  waiting ones included; a waiting container never takes a slot from a step
  that may start: when such a step needs a new container and no slot is
  free, the waiting container needed last gives its slot up (it is removed;
  its step gets a fresh container when its turn comes).
"""

from __future__ import annotations

from typing import AbstractSet, List, Optional

from orchestrator.running.scheduler import DagScheduler, StepState

_UNDER_WAY = (StepState.RUNNING, StepState.COMPLETED)


def steps_to_start_early(scheduler: DagScheduler, started_early: AbstractSet[str],
                         max_parallelism: int, depth: Optional[int] = None) -> List[str]:
    """Steps whose containers to start now, soonest needed first.

    Args:
        scheduler: the run's scheduler (read only).
        started_early: steps that already have a container waiting at its gate.
        max_parallelism: most step containers at once, waiting ones included.
        depth: how many levels below a running step to look (None: no limit
            but the free slots).

    Returns:
        Step names, at most as many as there are free slots.
    """
    if scheduler.stop_requested:
        return []
    counts = scheduler.counts()
    free = (max_parallelism - counts[StepState.RUNNING] - counts[StepState.STOPPING]
            - len(started_early))
    chosen: List[str] = []
    ahead = set(started_early)
    level = 0
    while free > 0 and (depth is None or level < depth):
        level += 1
        this_level = [
            step for step in scheduler.topological_order()
            if step not in ahead
            and scheduler.state(step) is StepState.PENDING
            and scheduler.attempts(step) == 0
            and scheduler.upstreams_of(step)
            and _waits_for_under_way(scheduler, step, ahead)
        ][:free]
        if not this_level:
            break
        chosen.extend(this_level)
        ahead.update(this_level)
        free -= len(this_level)
    return chosen


def _waits_for_under_way(scheduler: DagScheduler, step: str, ahead: AbstractSet[str]) -> bool:
    """Every upstream step runs, completed or waits early, and not all completed
    (a step whose upstream steps all completed is ready, not early)."""
    upstreams = scheduler.upstreams_of(step)
    states = [scheduler.state(up) for up in upstreams]
    return (all(state in _UNDER_WAY or up in ahead for up, state in zip(upstreams, states))
            and not all(state is StepState.COMPLETED for state in states))


def steps_to_give_up(scheduler: DagScheduler, started_early: AbstractSet[str],
                     max_parallelism: int) -> List[str]:
    """Waiting containers to remove so that one more step may get a fresh container.

    Called when a step that may start now has no container waiting for it;
    the scheduler already counts that step as running.

    Returns:
        Steps (with a waiting container) to give their slot up, needed last first.
    """
    counts = scheduler.counts()
    in_use = counts[StepState.RUNNING] + counts[StepState.STOPPING] + len(started_early)
    excess = in_use - max_parallelism
    if excess <= 0:
        return []
    order = scheduler.topological_order()
    waiting = sorted(started_early, key=order.index, reverse=True)
    return waiting[:excess]

"""What every exercise check shares: its error, its checker, and small helpers.

Kept apart from the checks themselves (`checks`, `flavor_checks` and the
method checks' modules gathered by `method_checks`) so that each imports it
and none imports the others' modules back.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Callable, Iterator, List

__all__ = ["ExerciseCheckError"]


class ExerciseCheckError(AssertionError):
    """The reader's function gave a wrong answer (the message says which and why).

    In a notebook it shows as its message alone, without a traceback into
    the checks' source (IPython asks an exception for `_render_traceback_`
    before it formats one): what was claimed, on which input, what the
    reader's code returned, why it matters, and the checks already passed.
    """

    def _render_traceback_(self) -> List[str]:
        red, plain = "\x1b[31m", "\x1b[0m"
        lines = str(self).splitlines() or [""]
        return [f"{red}{type(self).__name__}: {lines[0]}{plain}", *lines[1:]]


class _Text(str):
    """An answer already described in words (shown as it is, not as a repr)."""


def _shown(value: Any, limit: int = 400) -> str:
    text = str(value) if isinstance(value, _Text) else repr(value)
    return text if len(text) <= limit else text[:limit] + " ..."


class _Checker:
    """Collects what was verified; fails with a clear message.

    `call` remembers the last call (the input a failure shows); `expect`
    fails with the claim, that input, what came back and why it matters.
    """

    def __init__(self, piece: str) -> None:
        self.piece = piece
        self.verified: List[str] = []
        self.last_input = ""

    def fail(self, claim: str, given: str, got: Any, why: str) -> None:
        passed = "".join(f"\n    passed: {item}" for item in self.verified) or " none"
        raise ExerciseCheckError(
            f"{self.piece}: your code fails a check.\n"
            f"  claim:          {claim}\n"
            f"  input:          {given or '(see the claim)'}\n"
            f"  yours returned: {_shown(got)}\n"
            f"  why it matters: {why}\n"
            f"  checks already passed ({len(self.verified)}):{passed}") from None

    def expect(self, condition: bool, claim: str, got: Any, why: str, given: str = "") -> None:
        """`claim` must hold; if not, fail showing the input, `got` and `why` it matters."""
        if not condition:
            self.fail(claim, given or self.last_input, got, why)
        self.verified.append(claim)

    def call(self, function: Callable, *args: Any, **kwargs: Any) -> Any:
        shown = ", ".join([_shown(a, 200) for a in args]
                          + [f"{k}={_shown(v, 200)}" for k, v in kwargs.items()])
        self.last_input = f"{self.piece}({shown})"
        try:
            return function(*args, **kwargs)
        except ExerciseCheckError:
            raise
        except Exception as error:  # noqa: BLE001 - the reader's error is shown as the answer
            self.fail("it returns an answer", self.last_input,
                      f"it raised {type(error).__name__}: {error}",
                      "an exception here stops the whole pipeline run")

    def call_shown(self, shown: str, function: Callable, *args: Any) -> Any:
        """`call`, with the input shown in words (for arguments without a useful repr)."""
        try:
            return function(*args)
        except ExerciseCheckError:
            raise
        except Exception as error:  # noqa: BLE001 - the reader's error is shown as the answer
            self.last_input = shown
            self.fail("it returns an answer", shown, f"it raised {type(error).__name__}: {error}",
                      "an exception here stops the whole pipeline run")
        finally:
            self.last_input = shown

    def holds_for_all(self, cases: Any, claim: str, why: str,
                      problem: Callable[[Any], Any], max_examples: int = 60) -> None:
        """`claim` on cases Hypothesis generates from the strategy `cases`.

        `problem(case)` returns None when the case is right, else
        ``(input shown, what came back)``. Hypothesis shrinks a failing case
        to a small one, and that one is shown. Derandomized: the same cases
        on every run, so a pass or a failure can be repeated.
        """
        from hypothesis import HealthCheck, Phase, Verbosity, given, settings

        class Counterexample(Exception):
            pass

        @settings(max_examples=max_examples, derandomize=True, database=None, deadline=None,
                  verbosity=Verbosity.quiet, report_multiple_bugs=False,
                  suppress_health_check=list(HealthCheck),
                  phases=(Phase.explicit, Phase.generate, Phase.shrink))  # no `explain`: slow
        @given(cases)
        def run(case: Any) -> None:
            found = problem(case)
            if found is not None:
                raise Counterexample(*found)

        try:
            run()
        except Counterexample as found:
            given_text, got = found.args
            self.fail(f"{claim} (on generated cases; this is the smallest one found)",
                      given_text, _Text(got), why)
        self.verified.append(f"{claim} (on {max_examples} generated cases)")


@contextlib.contextmanager
def variable_kept(name: str) -> Iterator[None]:
    """Whatever a check does to environment variable `name`, it is as before afterwards
    (ZenML's `temporary_environment` leaves a value changed inside the block)."""
    saved = os.environ.get(name)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved


def _removed(client: Any, container_id: str) -> bool:
    import docker

    try:
        client.containers.get(container_id)
    except docker.errors.NotFound:
        return True
    return False

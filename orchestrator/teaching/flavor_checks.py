"""Checks of the flavor's pieces: settings and config, the flavor, and stage 2's
`submit_pipeline` (notebook 2; the settings grow in notebooks 4 and 5).

The classes are checked as ZenML uses them: the flavor is instantiated and
asked its name and classes; the config is built the way ``zenml orchestrator
register`` builds it (with no option, then with one), and the settings the
way a pipeline's ``settings={"orchestrator": {...}}`` are (a wrong type must
be refused). `submit_pipeline` is called with a stand-in for ``self`` and a
stand-in snapshot: its ``run_step`` records which step ran, with which
environment, and fails the steps the check asks it to fail. On generated
graphs (Hypothesis), every step that can run runs once, after its upstream
steps, and none that needs a failed step does.
"""

from __future__ import annotations

import logging
import os
import sys
from types import SimpleNamespace
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

from orchestrator.teaching.check_base import _Checker, variable_kept

FLAVOR_NAME = "my_orchestrator"  # what the notebooks register: -f my_orchestrator


# --------------------------------------------------------------------------
# settings and config (notebooks 2, 4, 5)
# --------------------------------------------------------------------------


def _settings_class_of(config_class: type) -> Optional[type]:
    """The settings class the config inherits (the one that is not a config)."""
    from zenml.config.base_settings import BaseSettings
    from zenml.orchestrators import BaseOrchestratorConfig

    return next((base for base in config_class.__mro__[1:]
                 if issubclass(base, BaseSettings) and base is not BaseSettings
                 and not issubclass(base, BaseOrchestratorConfig)), None)


# notebook -> {field: default}: what the settings hold from that notebook on
SETTINGS_FIELDS: Dict[int, Dict[str, Any]] = {
    2: {"announce": True},
    4: {"max_parallelism": 4},
    5: {"max_parallelism": 4, "stop_grace_seconds": 5},
}
FIELD_WHY = {
    "announce": "submit_pipeline reads settings.announce to log a line before each step",
    "max_parallelism": "the loop reads it to know how many containers may run at once",
    "stop_grace_seconds": "a stop gives each container this long between SIGTERM and SIGKILL",
}


def settings_and_config_check(notebook: int) -> Callable[[type], List[str]]:
    """The check of notebook `notebook`'s version of the settings and the config."""

    def check(config_class: type) -> List[str]:
        from pydantic import ValidationError
        from zenml.orchestrators import BaseOrchestratorConfig

        c = _Checker("MyOrchestratorConfig")
        c.last_input = "the classes of your cell"
        c.expect(isinstance(config_class, type) and issubclass(config_class,
                                                                BaseOrchestratorConfig),
                 "MyOrchestratorConfig is a subclass of ZenML's BaseOrchestratorConfig",
                 config_class, "ZenML builds a registered orchestrator's options from it")
        settings_class = _settings_class_of(config_class)
        c.expect(settings_class is not None and settings_class.__name__ ==
                 "MyOrchestratorSettings",
                 "MyOrchestratorConfig inherits MyOrchestratorSettings (a BaseSettings)",
                 [base.__name__ for base in config_class.__mro__[1:4]],
                 "a setting's value when a pipeline sets nothing is the registered "
                 "component's option: the config must carry the settings' fields")
        assert settings_class is not None  # c.expect failed otherwise
        expected = SETTINGS_FIELDS[notebook]
        fields = {name: field.default for name, field in settings_class.model_fields.items()
                  if name in expected}
        for name, default in expected.items():
            c.expect(fields.get(name, ...) == default,
                     f"MyOrchestratorSettings has the field {name}, {default!r} by default",
                     {n: f.default for n, f in settings_class.model_fields.items()},
                     FIELD_WHY[name])
        config = c.call_shown("MyOrchestratorConfig() (registered with no option)",
                              config_class)
        why = {"is_local": "it runs on this machine: ZenML then adds its database driver to "
                           "step images when the store is a local database, and refuses to "
                           "run the pipeline from a server",
               "is_synchronous": "your submit_pipeline returns when the run is over: the "
                                 "config says so (orchestrators that can do both read it)"}
        for name in ("is_local", "is_synchronous"):
            value = getattr(config, name)
            c.expect(value is True, f"config.{name} is True", value, why[name])
        retries = config.handles_step_retries
        if notebook >= 5:
            c.expect(retries is True, "config.handles_step_retries is True", retries,
                     "your loop retries whole containers: if ZenML retried too, inside each "
                     "container, the retries would multiply (and a killed container would "
                     "still get only yours)")
        else:
            c.expect(retries is False, "config.handles_step_retries is False (ZenML's own "
                     "retries, until notebook 5)", retries,
                     "this stage has no retries of its own: saying it handles them would "
                     "turn every step's retry policy off")
        name, default = next(iter(expected.items()))
        other = (not default) if isinstance(default, bool) else default + 1
        registered = c.call_shown(f"MyOrchestratorConfig({name}={other!r})",
                                  lambda: config_class(**{name: other}))
        c.expect(getattr(registered, name) == other,
                 f"an option given at registration is kept ({name}={other!r})",
                 getattr(registered, name), "`zenml orchestrator register ... "
                 f"--{name}=...` sets the default of every run on that orchestrator")
        for name, default in expected.items():
            wrong = "not a bool" if isinstance(default, bool) else 2.5
            kind = "bool" if isinstance(default, bool) else "int"
            try:
                settings_class(**{name: wrong})
            except ValidationError:
                c.verified.append(f"{name} is a {kind}: a pipeline's {name}={wrong!r} is refused")
            else:
                c.fail(f"{name} is a {kind}: a pipeline's {name}={wrong!r} is refused",
                       f"MyOrchestratorSettings({name}={wrong!r})", "it was accepted",
                       f"declare the field as `{name}: {kind} = {default!r}`: pydantic then "
                       "refuses a wrong value before the run starts, instead of a step "
                       "failing on it later")
        return c.verified

    return check


# --------------------------------------------------------------------------
# the flavor (notebook 2)
# --------------------------------------------------------------------------


def _stand_ins() -> Dict[str, Any]:
    """What the flavor's properties name, when the flavor's cell runs on its own (the
    file's classes; the check tells them apart from anything else returned)."""
    from zenml.config.base_settings import BaseSettings
    from zenml.orchestrators import BaseOrchestrator, BaseOrchestratorConfig

    class MyOrchestratorConfig(BaseOrchestratorConfig):
        """Stands in for the file's config class."""

    class MyOrchestrator(BaseOrchestrator):  # type: ignore[misc] - abstract: never built
        """Stands in for the file's orchestrator class."""

    class MyOrchestratorSettings(BaseSettings):
        """Stands in for the file's settings class."""

    return {"MyOrchestratorConfig": MyOrchestratorConfig, "MyOrchestrator": MyOrchestrator,
            "MyOrchestratorSettings": MyOrchestratorSettings}


def _names_seen_by(cls: type) -> Dict[str, Any]:
    """The module names a class's properties see: its cell's module (`checked_pieces._execute`
    runs each cell as a module of its own, with the stand-ins in it)."""
    module = sys.modules.get(cls.__module__)
    return vars(module) if module is not None else {}


def check_flavor(flavor_class: type) -> List[str]:
    from zenml.enums import StackComponentType
    from zenml.orchestrators import BaseOrchestratorFlavor

    c = _Checker("MyOrchestratorFlavor")
    c.last_input = "MyOrchestratorFlavor()"
    c.expect(isinstance(flavor_class, type) and issubclass(flavor_class, BaseOrchestratorFlavor),
             "a subclass of ZenML's BaseOrchestratorFlavor", flavor_class,
             "it makes the flavor an orchestrator's (its type) and gives the rest ZenML stores")
    flavor = c.call_shown("MyOrchestratorFlavor()", flavor_class)
    name = c.call_shown("MyOrchestratorFlavor().name", lambda: flavor.name)
    c.expect(name == FLAVOR_NAME, f"name is {FLAVOR_NAME!r}", name,
             f"the notebooks register the orchestrator with `-f {FLAVOR_NAME}`: "
             "ZenML finds the flavor by this name (and `my_docker` is taken by the package)")
    c.expect(flavor.type == StackComponentType.ORCHESTRATOR, "its type is orchestrator",
             flavor.type, "ZenML puts it under `zenml orchestrator flavor list`")
    names = _names_seen_by(flavor_class)
    config_class = c.call_shown("MyOrchestratorFlavor().config_class",
                                lambda: flavor.config_class)
    c.expect(config_class is names.get("MyOrchestratorConfig"),
             "config_class is the file's MyOrchestratorConfig", config_class,
             "ZenML checks `zenml orchestrator register ... --option=value` against it "
             "and builds the component's config from it")
    implementation = c.call_shown("MyOrchestratorFlavor().implementation_class",
                                  lambda: flavor.implementation_class)
    c.expect(implementation is names.get("MyOrchestrator"),
             "implementation_class is the file's MyOrchestrator", implementation,
             "ZenML builds the orchestrator that runs the pipelines from this class")
    return c.verified


# --------------------------------------------------------------------------
# stage 2's submit_pipeline (notebook 2)
# --------------------------------------------------------------------------


class _StepFailed(Exception):
    """What the stand-in's run_step raises for a step the check fails."""


class _SelfForSubmit:
    """A stand-in for MyOrchestrator at stage 2: records what `submit_pipeline` did."""

    def __init__(self, failing: Tuple[str, ...], announce: bool = True) -> None:
        from orchestrator.teaching.solutions import RUN_ID_VARIABLE

        self.variable = RUN_ID_VARIABLE
        self.failing = set(failing)
        self.announce = announce
        self.ran: List[Tuple[str, Optional[str], Optional[str]]] = []
        self.recorded_failed: List[Any] = []

    def get_settings(self, snapshot: Any) -> Any:
        return SimpleNamespace(announce=self.announce)

    def run_step(self, step: Any) -> None:
        self.ran.append((step.name, os.environ.get(self.variable),
                         os.environ.get("MY_CHECK_STEP")))
        if step.name in self.failing:
            raise _StepFailed(f"{step.name} failed (the check made it fail)")

    def _record_failed_run(self, placeholder_run: Any) -> None:
        self.recorded_failed.append(placeholder_run)


class _Lines(logging.Logger):
    """Stands in for the file's `logger`: keeps each message, shows none."""

    def __init__(self) -> None:
        super().__init__("my_orchestrator (the check's)")
        self.lines: List[str] = []

    def handle(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _snapshot(graph: Dict[str, List[str]]) -> Any:
    steps = {name: SimpleNamespace(name=name, spec=SimpleNamespace(upstream_steps=list(ups)))
             for name, ups in graph.items()}
    return SimpleNamespace(step_configurations=steps)


def _needs_failed(graph: Dict[str, List[str]], failing: set) -> set:
    """The steps that cannot run: the failing ones' downstream steps, transitively."""
    blocked: set = set()
    changed = True
    while changed:
        changed = False
        for step, ups in graph.items():
            if step not in blocked and set(ups) & (failing | blocked):
                blocked.add(step)
                changed = True
    return blocked


class _Submitted(NamedTuple):
    me: _SelfForSubmit
    raised: Optional[BaseException]
    returned: Any
    lines: List[str]


def _submit(submit_pipeline: Callable, graph: Dict[str, List[str]],
            failing: Tuple[str, ...], announce: bool = True) -> _Submitted:
    """One call of `submit_pipeline`, its `logger` swapped for one that keeps the lines."""
    me = _SelfForSubmit(failing, announce)
    environments = {name: {"MY_CHECK_STEP": name} for name in graph}
    placeholder = SimpleNamespace(id="placeholder-run")
    module = getattr(submit_pipeline, "__globals__", {})
    lines = _Lines()
    saved_logger = module.get("logger")
    module["logger"] = lines
    raised: Optional[BaseException] = None
    returned: Any = None
    try:
        returned = submit_pipeline(me, _snapshot(graph), None, {}, environments, placeholder)
    except Exception as error:  # noqa: BLE001 - a raise is expected after a failure
        raised = error
    finally:
        if saved_logger is None:
            module.pop("logger", None)
        else:
            module["logger"] = saved_logger
    return _Submitted(me, raised, returned, lines.lines)


def _submit_problem(submit_pipeline: Callable, graph: Dict[str, List[str]],
                    failing: Tuple[str, ...]) -> Optional[str]:
    """What is wrong with one run of `submit_pipeline` (None: nothing)."""
    me, raised, returned, _ = _submit(submit_pipeline, graph, failing)
    if raised is not None and not isinstance(raised, RuntimeError):
        return f"it raised {type(raised).__name__}: {raised}"
    if not failing and raised is not None:
        return f"no step failed and it raised {type(raised).__name__}: {raised}"
    blocked = _needs_failed(graph, set(failing))
    ran = [name for name, _, _ in me.ran]
    should_run = [name for name in graph if name not in blocked]
    if sorted(ran) != sorted(should_run):
        return (f"ran {ran}; should run each of {sorted(should_run)} once"
                + (f" and not {sorted(blocked)} (they need a failed step)" if blocked else ""))
    position = {name: i for i, name in enumerate(ran)}
    late = [(up, name) for name in ran for up in graph[name] if position.get(up, -1) > position[name]]
    if late:
        return f"ran {ran}: {late[0][1]} ran before its upstream step {late[0][0]}"
    wrong_env = [name for name, _, env in me.ran if env != name]
    if wrong_env:
        return f"{wrong_env[0]} ran without its own environment (step_environments[name])"
    ids = {run_id for _, run_id, _ in me.ran}
    if me.ran and (len(ids) != 1 or None in ids):
        return f"the steps saw {me.variable} = {sorted(map(str, ids))}: one id for all"
    failed = [name for name in ran if name in failing]  # a failing step may be skipped first
    if failed and raised is None:
        return "a step failed and submit_pipeline returned normally"
    if failed and not all(name in str(raised) for name in failed):
        return f"its error does not name the failed step(s) {failed}: {raised}"
    if not failing and returned is not None:
        return f"it returned {returned!r}: ZenML takes anything but None for a SubmissionResult"
    return None


def _announce_problem(lines: List[str], order: List[str], announce: bool) -> Optional[str]:
    said = [line for line in lines if line.startswith("my_orchestrator: step ")]
    if not announce:
        return f"announce=False, and yet it logged {said}" if said else None
    wanted = [f"my_orchestrator: step {number}/{len(order)}: {name}"
              for number, name in enumerate(order, start=1)]
    return None if said == wanted else f"it logged {said or lines}; expected {wanted}"


def check_submit_pipeline(submit_pipeline: Callable) -> List[str]:
    from orchestrator.teaching.solutions import RUN_ID_VARIABLE

    c = _Checker("submit_pipeline")
    diamond = {"join": ["left", "right"], "left": ["src"], "right": ["src"], "src": [],
               "lonely": []}
    with variable_kept(RUN_ID_VARIABLE):
        os.environ.pop(RUN_ID_VARIABLE, None)
        given = f"a diamond listed backwards plus an independent step: {diamond}"
        c.last_input = given
        first = _submit(submit_pipeline, diamond, ())
        problem = _submit_problem(submit_pipeline, diamond, ())
        c.expect(problem is None, "every step runs once, after its upstream steps, each in "
                 "its own environment, all with one run id; it returns None",
                 problem or first.me.ran, "a step reads its upstream steps' outputs; ZenML "
                 "finds the run's record by the id each step gives")
        order = [name for name, _, _ in first.me.ran]
        problem = _announce_problem(first.lines, order, True)
        c.expect(problem is None, "announce on: one line `my_orchestrator: step N/M: name` "
                 "per step, before it runs, through `logger`", problem,
                 "the reader of the log sees which step runs (notebook 2's run counts them)")
        quiet = _submit(submit_pipeline, diamond, (), announce=False)
        problem = _announce_problem(quiet.lines, order, False)
        c.expect(problem is None, "announce off: no such line", problem,
                 "a setting that changes nothing is a lie to the user")
        c.expect(first.me.ran[0][1] != quiet.me.ran[0][1], "each run has an id of its own",
                 [first.me.ran[0][1], quiet.me.ran[0][1]],
                 "two runs with one id would share one record")
        c.expect(RUN_ID_VARIABLE not in os.environ, "the run id is not left in this process's "
                 "environment afterwards", os.environ.get(RUN_ID_VARIABLE),
                 "the next run, or a step run outside the orchestrator, would find the old id")
        failed = _submit(submit_pipeline, diamond, ("left",))
        c.last_input = f"{given}, with step 'left' failing"
        problem = _submit_problem(submit_pipeline, diamond, ("left",))
        c.expect(problem is None, "CONTINUE_ON_FAILURE: 'join' (it needs 'left') is skipped; "
                 "'right' and 'lonely' still run; then a RuntimeError naming 'left'",
                 problem or failed.me.ran, "the one execution mode this stage declares: the "
                 "others go on, and the pipeline call still ends in an error that says why")
        c.expect(len(failed.me.recorded_failed) == 1, "the failed run is recorded "
                 "(self._record_failed_run(placeholder_run), once)",
                 failed.me.recorded_failed, "ZenML's record of the run would stay 'running'")
        from orchestrator.teaching.properties import submit_pipeline_properties

        submit_pipeline_properties(c, lambda graph, failing: _submit_problem(
            submit_pipeline, graph, failing))
    return c.verified


# piece -> what the piece's cell needs to run on its own (see `checked_pieces._execute`)
STAND_INS: Dict[str, Callable[[], Dict[str, Any]]] = {"MyOrchestratorFlavor": _stand_ins}

FLAVOR_CHECKS: Dict[str, Callable[..., List[str]]] = {
    "MyOrchestratorConfig": settings_and_config_check(2),
    "MyOrchestratorConfig@4": settings_and_config_check(4),
    "MyOrchestratorConfig@5": settings_and_config_check(5),
    "MyOrchestratorFlavor": check_flavor,
    "submit_pipeline": check_submit_pipeline,
}

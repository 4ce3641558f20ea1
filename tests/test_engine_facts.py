"""The engine kinds (rootful Docker, rootless Docker, Podman) and what follows from them.

Pure decisions, from the engines' own answers as recorded on this project's
machines (Docker 20.10 rootful and rootless, Podman 4.3 rootless, cgroup v1);
no engine needed. The real engines are exercised in tests/test_engines_rootless.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.errors import DockerEngineUnavailableError
from orchestrator.machine import engine, root_setup
from orchestrator.machine.engine_facts import (
    EngineFacts,
    engine_facts,
    step_user_for,
    unenforced_limits,
    unenforced_message,
)

ROOTFUL_DOCKER_INFO = {"SecurityOptions": ["name=seccomp,profile=default"],
                       "MemoryLimit": True, "CpuCfsQuota": True, "ServerVersion": "20.10.24"}
ROOTLESS_DOCKER_INFO = {"SecurityOptions": ["name=seccomp,profile=default", "name=rootless"],
                        "MemoryLimit": False, "CpuCfsQuota": False, "CgroupDriver": "none",
                        "ServerVersion": "20.10.24"}
DOCKER_VERSION = {"Version": "20.10.24", "Components": [{"Name": "Engine", "Version": "20.10.24"}]}
# Podman's Docker-compatible answers claim limits it cannot apply.
PODMAN_COMPAT_INFO = {"SecurityOptions": ["name=seccomp,profile=default", "name=rootless"],
                      "MemoryLimit": True, "CpuCfsQuota": True}
PODMAN_VERSION = {"Version": "4.3.1", "Platform": {"Name": "linux/amd64/debian-12"},
                  "Components": [{"Name": "Podman Engine", "Version": "4.3.1"}]}
PODMAN_LIBPOD_INFO = {"host": {"security": {"rootless": True}, "cgroupControllers": [],
                               "cgroupVersion": "v1"},
                      "version": {"Version": "4.3.1"}}


def test_rootful_docker_keeps_the_callers_uid() -> None:
    facts = engine_facts(ROOTFUL_DOCKER_INFO, DOCKER_VERSION)
    assert (facts.product, facts.rootless, facts.memory_limit, facts.cpu_limit) == \
        ("Docker", False, True, True)
    assert step_user_for(facts, 1001, 1001) == "1001:1001"


def test_rootless_docker_runs_steps_as_container_root_and_drops_limits() -> None:
    facts = engine_facts(ROOTLESS_DOCKER_INFO, DOCKER_VERSION, address="unix:///run/user/1001/docker.sock")
    assert facts.rootless and not facts.memory_limit and not facts.cpu_limit
    assert step_user_for(facts, 1001, 1001) == "0:0"
    assert facts.name == "rootless Docker 20.10.24 at unix:///run/user/1001/docker.sock"


def test_podman_is_judged_by_its_own_info_not_its_docker_compatible_claims() -> None:
    facts = engine_facts(PODMAN_COMPAT_INFO, PODMAN_VERSION, PODMAN_LIBPOD_INFO)
    assert (facts.product, facts.version, facts.rootless) == ("Podman", "4.3.1", True)
    assert not facts.memory_limit and not facts.cpu_limit  # no delegated controllers
    assert step_user_for(facts, 1001, 1001) == "0:0"
    delegated = {**PODMAN_LIBPOD_INFO, "host": {**PODMAN_LIBPOD_INFO["host"],
                                                "cgroupControllers": ["cpu", "memory", "pids"]}}
    facts = engine_facts(PODMAN_COMPAT_INFO, PODMAN_VERSION, delegated)
    assert facts.memory_limit and facts.cpu_limit


def test_podman_without_libpod_answer_is_recognised_from_its_version() -> None:
    facts = engine_facts(PODMAN_COMPAT_INFO, PODMAN_VERSION, None)
    assert facts.product == "Podman" and facts.rootless
    assert not facts.memory_limit  # unknown: a rootless engine is not trusted with limits
    rootful = engine_facts({"SecurityOptions": []}, PODMAN_VERSION, {"host": {
        "security": {"rootless": False}, "cgroupControllers": ["cpu", "memory"]}})
    assert not rootful.rootless and step_user_for(rootful, 5, 6) == "5:6"


@given(rootless=st.booleans(), uid=st.integers(0, 2**31), gid=st.integers(0, 2**31))
def test_the_step_user_is_the_caller_on_the_host_on_every_engine(rootless: bool, uid: int,
                                                                 gid: int) -> None:
    """Rootless: only container uid 0 maps to the caller; rootful: the caller's own ids."""
    user = step_user_for(EngineFacts(rootless=rootless), uid, gid)
    assert user == ("0:0" if rootless else f"{uid}:{gid}")


@given(memory=st.booleans(), cpu=st.booleans(),
       mem_limit=st.one_of(st.none(), st.integers(6 << 20, 1 << 40)),
       nano_cpus=st.one_of(st.none(), st.integers(1, 64 * 10**9)))
def test_unenforced_limits_names_exactly_the_asked_limits_the_engine_drops(
        memory: bool, cpu: bool, mem_limit, nano_cpus) -> None:
    limits = {key: value for key, value in (("mem_limit", mem_limit), ("memswap_limit", mem_limit),
                                            ("nano_cpus", nano_cpus)) if value}
    dropped = unenforced_limits(EngineFacts(memory_limit=memory, cpu_limit=cpu), limits)
    expected = []
    if mem_limit and not memory:
        expected.append("memory")
    if nano_cpus and not cpu:
        expected.append("cpu_count")
    assert dropped == tuple(expected)


def test_the_warning_names_the_engine_the_steps_and_the_settings() -> None:
    facts = engine_facts(ROOTLESS_DOCKER_INFO, DOCKER_VERSION, address="unix:///run/user/7/docker.sock")
    message = unenforced_message(facts, {"train": ("memory", "cpu_count"), "load": ("memory",)})
    assert "rootless Docker 20.10.24 at unix:///run/user/7/docker.sock" in message
    assert "'load' (memory), 'train' (memory, cpu_count)" in message
    assert "WITHOUT" in message


# --------------------------------------------------------------------------
# Which engine: DOCKER_HOST, DOCKER_CONTEXT, the current context, the default
# --------------------------------------------------------------------------


def _write_context(config_dir: Path, name: str, host: str) -> None:
    """A context as `docker context create NAME --docker host=HOST` writes it."""
    from docker.context.config import get_context_id

    meta = config_dir / "contexts" / "meta" / get_context_id(name) / "meta.json"
    meta.parent.mkdir(parents=True)
    meta.write_text(json.dumps({"Name": name, "Metadata": {},
                                "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": False}}}))


def test_the_engine_is_chosen_in_the_docker_clis_order(tmp_path: Path) -> None:
    _write_context(tmp_path, "podman", "unix:///run/user/9/podman.sock")
    _write_context(tmp_path, "other", "unix:///srv/other.sock")
    env = {"DOCKER_CONFIG": str(tmp_path)}
    assert engine.resolve_target(env).source == "default"
    assert engine.resolve_target(env).host == root_setup.DEFAULT_HOST
    (tmp_path / "config.json").write_text(json.dumps({"currentContext": "podman"}))
    target = engine.resolve_target(env)
    assert (target.host, target.source, target.context) == \
        ("unix:///run/user/9/podman.sock", "docker context", "podman")
    target = engine.resolve_target({**env, "DOCKER_CONTEXT": "other"})
    assert (target.host, target.source, target.context) == \
        ("unix:///srv/other.sock", "DOCKER_CONTEXT", "other")
    target = engine.resolve_target({**env, "DOCKER_CONTEXT": "other", "DOCKER_HOST": "tcp://h:1"})
    assert (target.host, target.source, target.context) == ("tcp://h:1", "DOCKER_HOST", None)
    assert engine.resolve_target({**env, "DOCKER_CONTEXT": "default"}).host == root_setup.DEFAULT_HOST


def test_a_missing_context_says_which_and_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(DockerEngineUnavailableError) as caught:
        engine.resolve_target({"DOCKER_CONFIG": str(tmp_path), "DOCKER_CONTEXT": "colima"})
    message = str(caught.value)
    assert "'colima'" in message and "DOCKER_CONTEXT" in message
    assert "docker context ls" in message and "docker context use" in message


def test_a_context_chosen_engine_is_exported_for_zenmls_build(tmp_path: Path) -> None:
    _write_context(tmp_path, "podman", "unix:///run/user/9/podman.sock")
    environ = {"DOCKER_CONFIG": str(tmp_path), "DOCKER_CONTEXT": "podman"}
    engine.use_context_engine_everywhere(environ)
    assert environ["DOCKER_HOST"] == "unix:///run/user/9/podman.sock"
    untouched = {"DOCKER_CONFIG": str(tmp_path)}
    engine.use_context_engine_everywhere(untouched)
    assert "DOCKER_HOST" not in untouched  # no context chosen: the default stays implicit


@pytest.mark.parametrize("host, context, source, expected, unexpected", [
    ("unix:///run/user/1001/podman.sock", None, "DOCKER_HOST",
     ["podman system service", "DOCKER_HOST chose"], ["docker group", "systemctl start docker`"]),
    ("unix:///run/user/1001/docker.sock", None, "DOCKER_HOST",
     ["dockerd-rootless.sh"], ["docker group", "podman"]),
    ("unix:///run/user/1001/docker.sock", "rootless", "docker context",
     ["dockerd-rootless.sh", "docker context 'rootless'", "docker context use"], ["docker group"]),
    ("unix:///var/run/docker.sock", None, "default",
     ["docker` group"], ["dockerd-rootless", "podman"]),
])
def test_advice_fits_the_engine_and_the_context(host, context, source, expected, unexpected,
                                                tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))  # no engine socket of this user's
    advice = engine.advice_for(engine.EngineTarget(host, source, context), permission_denied=True)
    for text in expected:
        assert text in advice
    for text in unexpected:
        assert text not in advice


# --------------------------------------------------------------------------
# Podman specifics: build flags, container ids, image names
# --------------------------------------------------------------------------


@pytest.mark.parametrize("cli", [True, False])
def test_build_container_removal_is_spelled_for_the_builder(cli: bool) -> None:
    """docker-py takes `forcerm`; ZenML's CLI builds (Podman's, `docker build`) need
    `--force-rm`: `--forcerm` is refused by both commands."""
    import shutil
    import subprocess

    from zenml.config.docker_settings import DockerBuildOptions

    from orchestrator.running.builds import removal_options

    options = DockerBuildOptions.model_validate(removal_options({"forcerm": True, "pull": False},
                                                                cli))
    flags = options.to_docker_cli_options()
    sdk = options.to_docker_python_sdk_options()
    if cli:
        assert flags == ["--rm", "--force-rm"]
        assert "forcerm" not in sdk
        for program in ("podman", "docker"):
            if shutil.which(program):  # the real command knows every flag we pass
                help_text = subprocess.run([program, "build", "--help"], capture_output=True,
                                           text=True, timeout=60).stdout
                for flag in flags:
                    assert f"{flag} " in help_text, (program, flag)
    else:
        assert sdk["rm"] is True and sdk["forcerm"] is True and "force_rm" not in sdk


def test_the_probe_finds_its_container_on_docker_and_on_podman() -> None:
    from orchestrator.conformance.probe import container_id

    docker_id, podman_id = "a" * 64, "b" * 64
    docker_line = (f"612 600 8:1 /var/lib/docker/containers/{docker_id}/hostname /etc/hostname "
                   "rw,relatime - ext4 /dev/sda1 rw\n")
    podman_line = ("700 690 0:52 /home/u/.local/share/containers/storage/overlay-containers/"
                   f"{podman_id}/userdata/hostname /etc/hostname rw - tmpfs tmpfs rw\n")
    assert container_id("24 1 0:22 / /proc rw - proc proc rw\n" + docker_line) == docker_id
    assert container_id(podman_line) == podman_id
    assert container_id("24 1 0:22 / /proc rw - proc proc rw\n") is None


@pytest.mark.parametrize("tags, name, found", [
    (["localhost/my-docker/zenml-parent:0.98.0-py3.11"], "my-docker/zenml-parent:0.98.0-py3.11", True),
    (["docker.io/zenmldocker/zenml:0.98.0-py3.11"], "zenmldocker/zenml:0.98.0-py3.11", True),
    (["docker.io/library/python:3.11-slim"], "python:3.11-slim", True),
    (["my-docker/zenml-parent:0.98.0-py3.11"], "my-docker/zenml-parent:0.98.0-py3.11", True),
    (["localhost/my-docker/zenml-parent:old"], "my-docker/zenml-parent:0.98.0-py3.11", False),
    (["quay.io/my-docker/zenml-parent:0.98.0-py3.11"], "my-docker/zenml-parent:0.98.0-py3.11", False),
])
def test_image_names_are_recognised_as_podman_reports_them(tags, name, found) -> None:
    from orchestrator.machine.base_image import image_has_name

    assert image_has_name(tags, name) is found


def test_the_kit_names_limits_the_engine_cannot_enforce_instead_of_failing() -> None:
    from orchestrator.conformance.properties import (
        REQUESTED_CPUS,
        REQUESTED_MEMORY_BYTES,
        BatteryFacts,
        RunFacts,
        judge_resource_limits,
    )

    def facts(limits, unenforced=()):
        run = RunFacts(notes={"branch_a.started": {"time": 0.0, "limits": limits}})
        return BatteryFacts(runs={"shape": run}, engine="rootless Docker 20.10",
                            unenforced=tuple(unenforced))

    enforced = {"memory_bytes": REQUESTED_MEMORY_BYTES, "cpus": REQUESTED_CPUS}
    assert judge_resource_limits(facts(enforced)).passed is True
    assert judge_resource_limits(facts({})).passed is False  # dropped in silence: a failure
    verdict = judge_resource_limits(facts({}, ("memory", "cpu_count")))
    assert verdict.passed is None and verdict.mark == "n/e"
    assert "not enforced by this engine (rootless Docker 20.10): memory, cpu_count" in verdict.detail
    # What the engine can enforce is still judged.
    assert judge_resource_limits(facts({"cpus": REQUESTED_CPUS}, ("memory",))).passed is None
    assert judge_resource_limits(facts({"cpus": None}, ("memory",))).passed is False


def test_the_podman_advice_starts_the_service_where_docker_host_points() -> None:
    host = "unix:///run/user/1001/podman/podman.sock"
    advice = engine.advice_for(engine.EngineTarget(host, "DOCKER_HOST", None), False)
    assert f"podman system service --time=0 {host}" in advice


def test_a_users_own_rootless_socket_is_named_when_the_system_engine_fails(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A user whose rootless engine runs, with DOCKER_HOST unset, was told only
    about the docker group and `systemctl start docker`."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    target = engine.EngineTarget("unix:///var/run/docker.sock", "default", None)
    assert "export DOCKER_HOST" not in engine.advice_for(target, permission_denied=True)
    (tmp_path / "docker.sock").touch()
    advice = engine.advice_for(target, permission_denied=True)
    assert f"export DOCKER_HOST=unix://{tmp_path / 'docker.sock'}" in advice


def test_an_engine_over_tcp_is_not_called_remote() -> None:
    advice = engine.advice_for(engine.EngineTarget("tcp://127.0.0.1:1", "DOCKER_HOST", None),
                               False)
    assert "remote" not in advice and "docker -H tcp://127.0.0.1:1 info" in advice


@pytest.mark.parametrize("cli", [False, True], ids=["docker-py", "command"])
def test_a_users_build_option_survives_zenmls_snapshot_and_reaches_the_builder(cli):
    """ZenML's snapshot dumps and reloads the settings, which gives every build
    option a value (None where unset); docker-py refuses ZenML's name for an
    unset cache_from ('cachefrom'), and the command would get a bare
    `--cache-from`. Only what the user set, plus our removal, reaches the builder."""
    import inspect

    import docker
    from zenml.config import DockerSettings
    from zenml.config.docker_settings import DockerBuildConfig

    from orchestrator.running.builds import removing_build_containers

    users = DockerSettings(build_config=DockerBuildConfig(build_options={"pull": False}))
    reloaded = DockerSettings.model_validate(users.model_dump())  # as ZenML's snapshot does
    options = removing_build_containers(reloaded, cli=cli).build_config.build_options
    if cli:
        assert options.to_docker_cli_options() == ["--rm", "--force-rm"]  # pull=False: no flag
    else:
        sdk = options.to_docker_python_sdk_options()
        assert sdk == {"pull": False, "rm": True, "forcerm": True}
        accepted = inspect.signature(docker.APIClient.build).parameters
        assert set(sdk) <= set(accepted), set(sdk) - set(accepted)


def test_advice_for_an_address_nothing_listens_at_never_says_to_start_the_system_engine(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DOCKER_HOST at a socket of no engine: the advice said both 'as root, run ...
    (it installs and starts Docker)' and that starting the system engine would not help."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    target = engine.EngineTarget("unix:///tmp/nothing/docker.sock", "DOCKER_HOST", None)
    advice = engine.advice_for(target, permission_denied=False)
    assert "installs and starts Docker" not in advice and "systemctl start docker" not in advice
    assert "unset it" in advice


def test_a_users_running_engines_are_named_whatever_address_failed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A mistyped rootless address was told to start dockerd-rootless.sh, not that the
    user's engines run at docker.sock and podman.sock; and a user with no context
    was told only `export DOCKER_HOST`, not how to make a context of it."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    (tmp_path / "docker.sock").touch()
    (tmp_path / "podman.sock").touch()
    mistyped = engine.EngineTarget(f"unix://{tmp_path / 'nope.sock'}", "DOCKER_HOST", None)
    advice = engine.advice_for(mistyped, permission_denied=False)
    assert f"unix://{tmp_path / 'docker.sock'}" in advice
    assert f"unix://{tmp_path / 'podman.sock'}" in advice
    default = engine.EngineTarget("unix:///var/run/docker.sock", "default", None)
    advice = engine.advice_for(default, permission_denied=True)
    assert "docker context create" in advice and "docker context use" in advice
    running = engine.EngineTarget(f"unix://{tmp_path / 'docker.sock'}", "DOCKER_HOST", None)
    advice = engine.advice_for(running, permission_denied=False)  # not itself as the way out
    assert f"export DOCKER_HOST=unix://{tmp_path / 'docker.sock'}" not in advice


def test_with_docker_context_set_the_advice_is_to_change_that_variable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`docker context use` does nothing while DOCKER_CONTEXT is set."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    target = engine.EngineTarget("unix:///run/user/9/docker.sock", "DOCKER_CONTEXT", "dead")
    advice = engine.advice_for(target, permission_denied=False)
    assert "`docker context use NAME`" not in advice and "`docker context use mine`" not in advice
    assert "unset DOCKER_CONTEXT" in advice

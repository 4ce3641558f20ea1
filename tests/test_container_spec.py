"""Settings -> `docker create` arguments: pure rules, no Docker needed."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from zenml.config import ResourceSettings

from orchestrator.errors import InvalidSettingsError
from orchestrator.running.container_spec import (
    build_spec,
    container_name,
    merge_environment,
    resource_limits,
    resource_request,
    validate_run_args,
)
from orchestrator.running.labels import ATTEMPT_LABEL, STEP_LABEL


def _spec(run_args=None, limits=None, user="1000:1000"):
    return build_spec(
        image="img:1",
        entrypoint=["python", "-m", "zenml.entrypoints.entrypoint"],
        arguments=["--step_name", "train"],
        step_name="train",
        attempt=2,
        labels={"io.my-docker.orchestrator-run-id": "abc"},
        environment={"ZENML_X": "1", "SHARED": "ours"},
        mounts={"/stores": {"bind": "/stores", "mode": "rw"}},
        user=user,
        run_args=run_args or {},
        limits=limits or {},
        name="run-train-a2",
    )


def test_spec_has_labels_env_mounts_and_user():
    kwargs = _spec().create_kwargs()
    assert kwargs["labels"][STEP_LABEL] == "train"
    assert kwargs["labels"][ATTEMPT_LABEL] == "2"
    assert kwargs["labels"]["io.my-docker.orchestrator-run-id"] == "abc"
    assert kwargs["environment"]["ZENML_X"] == "1"
    assert kwargs["volumes"] == {"/stores": {"bind": "/stores", "mode": "rw"}}
    assert kwargs["user"] == "1000:1000"
    assert kwargs["detach"] is True
    assert "privileged" not in kwargs
    assert kwargs["extra_hosts"] == {"host.docker.internal": "host-gateway"}


def test_user_run_args_are_merged_but_ours_win():
    kwargs = _spec(
        run_args={
            "environment": {"SHARED": "theirs", "MINE": "2"},
            "labels": {"team": "ml", STEP_LABEL: "forged"},
            "volumes": ["/data:/data:ro"],
            "mem_limit": "1g",
            "user": "0:0",
        }
    ).create_kwargs()
    assert kwargs["environment"]["SHARED"] == "ours"
    assert kwargs["environment"]["MINE"] == "2"
    assert kwargs["labels"]["team"] == "ml"
    assert kwargs["labels"][STEP_LABEL] == "train"
    assert kwargs["volumes"]["/data"] == {"bind": "/data", "mode": "ro"}
    assert kwargs["volumes"]["/stores"]["mode"] == "rw"
    assert kwargs["mem_limit"] == "1g"
    assert kwargs["user"] == "0:0"


def test_explicit_run_args_win_over_resource_settings():
    kwargs = _spec(run_args={"mem_limit": "2g"}, limits={"mem_limit": 10**9, "nano_cpus": 10**9}).create_kwargs()
    assert kwargs["mem_limit"] == "2g"
    assert kwargs["nano_cpus"] == 10**9


@pytest.mark.parametrize(
    "run_args, fragment",
    [
        ({"mem_limt": "1g"}, "Did you mean 'mem_limit'"),
        ({"command": ["sh"]}, "sets 'command' itself"),
        ({"privileged": True}, "refused"),
        ({"volumes": {"/var/run/docker.sock": {"bind": "/var/run/docker.sock"}}}, "Docker socket"),
        ({"volumes": ["/var/run/docker.sock:/sock"]}, "Docker socket"),
        ({"environment": "A=1"}, "must be a dict"),
    ],
)
def test_bad_run_args_get_clear_errors(run_args, fragment):
    with pytest.raises(InvalidSettingsError, match=fragment):
        validate_run_args(run_args)


def test_privileged_false_is_allowed():
    validate_run_args({"privileged": False, "shm_size": "1g"})


def test_resource_settings_become_docker_limits():
    request = resource_request(ResourceSettings(cpu_count=1.5, memory="256MiB"))
    warnings = []
    limits = resource_limits(request, host_cpus=2, gpu_runtime_available=False,
                             warn=warnings.append, step_name="train")
    assert limits == {
        "nano_cpus": 1_500_000_000,
        "mem_limit": 256 * 1024 * 1024,
        "memswap_limit": 256 * 1024 * 1024,
    }
    assert warnings == []


def test_unhonourable_resources_warn_instead_of_failing_silently():
    request = resource_request(ResourceSettings(cpu_count=8, gpu_count=1))
    warnings = []
    limits = resource_limits(request, host_cpus=2, gpu_runtime_available=False,
                             warn=warnings.append, step_name="train")
    assert limits == {"nano_cpus": 2_000_000_000}
    assert any("8 CPUs" in w and "limiting it to 2" in w for w in warnings)
    assert any("GPU" in w and "no GPU runtime" in w for w in warnings)


def test_gpu_request_becomes_device_request_when_runtime_exists():
    request = resource_request(ResourceSettings(gpu_count=2))
    limits = resource_limits(request, host_cpus=2, gpu_runtime_available=True,
                             warn=lambda m: None, step_name="train")
    (device_request,) = limits["device_requests"]
    assert device_request["Count"] == 2
    assert device_request["Capabilities"] == [["gpu"]]


def test_tiny_memory_limit_is_rejected():
    request = resource_request(ResourceSettings(memory="1MB"))
    with pytest.raises(InvalidSettingsError, match="at least 6 MiB"):
        resource_limits(request, host_cpus=2, gpu_runtime_available=False,
                        warn=lambda m: None, step_name="train")


def test_no_resource_settings_means_no_limits():
    assert resource_limits(resource_request(None), host_cpus=2, gpu_runtime_available=False,
                           warn=lambda m: None, step_name="s") == {}


def test_container_names_are_valid_and_unique_per_attempt():
    first = container_name("my pipeline/run:1", "train", 1, "0123456789")
    second = container_name("my pipeline/run:1", "train", 2, "0123456789")
    assert first != second
    assert all(c.isalnum() or c in "_.-" for c in first)


# -- container names: valid and unique for any step name ZenML accepts ---------


_DOCKER_NAME = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$"


@given(run=st.text(max_size=300), steps=st.sets(st.text(max_size=300), min_size=2, max_size=6),
       attempt=st.integers(min_value=1, max_value=99))
@settings(max_examples=300, deadline=None)
def test_container_names_are_valid_and_distinct_for_any_names(run, steps, attempt):
    import re

    names = {container_name(run, step, attempt, "0123456789abcdef") for step in steps}
    assert len(names) == len(steps)
    assert all(re.match(_DOCKER_NAME, name) and len(name) <= 150 for name in names)


def test_look_alike_step_names_get_distinct_containers():
    names = {container_name("run", s, 1, "abcdef0123") for s in ("prep 1", "prep-1", "prep_1")}
    assert len(names) == 3


# -- the environment: merged with the user's, never silently dropped ---------------


def test_pythonpath_keeps_ours_first_then_the_users():
    env = merge_environment({"PYTHONPATH": "/opt/pkg"},
                            [{"PYTHONPATH": "/from-settings"}, {"PYTHONPATH": "/from-step"}])
    assert env["PYTHONPATH"] == "/opt/pkg:/from-step"


def test_the_images_pythonpath_is_kept_when_the_user_sets_none():
    env = merge_environment({"PYTHONPATH": "/opt/pkg"}, [{}],
                            image_environment={"PYTHONPATH": "/image/lib:/opt/pkg"})
    assert env["PYTHONPATH"] == "/opt/pkg:/image/lib"


def test_defaults_yield_to_the_user_and_the_image():
    env = merge_environment({}, [{"HOME": "/home/me"}],
                            defaults={"HOME": "/tmp", "COLOR": "0", "LANG": "C"},
                            image_environment={"LANG": "C.UTF-8"})
    assert env == {"HOME": "/home/me", "COLOR": "0"}


def test_a_user_value_that_gives_way_is_warned_about():
    warnings = []
    env = merge_environment({"RUN_ID": "ours"}, [{"RUN_ID": "theirs", "MINE": "1"}],
                            warn=warnings.append, step_name="train")
    assert env == {"RUN_ID": "ours", "MINE": "1"}
    assert len(warnings) == 1 and "RUN_ID" in warnings[0] and "train" in warnings[0]


def test_build_spec_merges_the_steps_zenml_environment_below_run_args():
    kwargs = _spec(run_args={"environment": {"A": "run_args"}}).create_kwargs()
    assert kwargs["environment"]["ZENML_X"] == "1"
    spec = build_spec(
        image="img", entrypoint=["e"], arguments=[], step_name="s", attempt=1, labels={},
        environment={"PYTHONPATH": "/pkg"}, mounts={}, user=None,
        run_args={"environment": {"A": "run_args", "PYTHONPATH": "/ra"}}, limits={},
        name="n", user_environment={"A": "step", "B": "step", "PYTHONPATH": "/step"},
        tmpfs={"/app": "mode=1777"})
    assert spec.environment["A"] == "run_args" and spec.environment["B"] == "step"
    assert spec.environment["PYTHONPATH"] == "/pkg:/ra"
    assert spec.extra["tmpfs"] == {"/app": "mode=1777"}

"""Settings -> `docker create` arguments: pure rules, no Docker needed."""

import pytest
from zenml.config import ResourceSettings

from orchestrator.container_spec import (
    ATTEMPT_LABEL,
    STEP_LABEL,
    build_spec,
    container_name,
    resource_limits,
    resource_request,
    validate_run_args,
)
from orchestrator.errors import InvalidSettingsError


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

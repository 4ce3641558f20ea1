"""ZenML's local server as the swarm tests and notebook 8 start it (`orchestrator.machine.zenml_server`).

Real server, real processes: a process that started the server and is then
killed (as Jupyter kills a kernel) must not leave the server running, since
the next start would find its port taken.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from orchestrator.machine.zenml_server import (
    ServerPortTakenError,
    port_is_taken,
    start_local_server,
)

pytestmark = pytest.mark.engine  # ZenML's local server, a service like the engine

STARTER = textwrap.dedent("""
    import time
    from orchestrator.machine.zenml_server import start_local_server

    url = start_local_server(echo=lambda _: None)
    again = start_local_server(echo=lambda _: None)  # a notebook cell run a second time
    print("started", url, again == url, flush=True)
    time.sleep(600)
""")


def _wait(condition, seconds, what):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.5)


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_killed_starter_leaves_no_server_and_a_second_start_in_one_process_is_fine(
        tmp_path, how):
    if port_is_taken():
        pytest.fail("Port 8237 is taken before the test: stop the ZenML server there "
                    "(`zenml logout --local`).")
    environment = dict(os.environ, ZENML_CONFIG_PATH=str(tmp_path / "zenml-config"),
                       ZENML_ANALYTICS_OPT_IN="false")
    starter = subprocess.Popen([sys.executable, "-c", STARTER], cwd=tmp_path, env=environment,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    try:
        output = []
        for line in starter.stdout:  # ZenML's own lines first
            output.append(line)
            if line.startswith("started "):
                break
        assert output and output[-1].startswith("started http://127.0.0.1:8237 True"), \
            "".join(output)
        assert port_is_taken()
        with pytest.raises(ServerPortTakenError, match="process .*local_daemon_entrypoint"):
            start_local_server(echo=lambda _: None)  # another process: told who holds the port
        os.killpg(starter.pid, how)  # the kernel and its process group, as Jupyter does
        starter.wait(timeout=30)
        _wait(lambda: not port_is_taken(), 90, "the server outlived the process that started it")
    finally:
        if starter.poll() is None:
            os.killpg(starter.pid, signal.SIGKILL)
        if port_is_taken():  # leave the port as found, whatever happened
            from orchestrator.machine.stack import zenml_executable

            subprocess.run([zenml_executable(), "logout", "--local"], env=environment,
                           cwd=tmp_path, capture_output=True, timeout=120)

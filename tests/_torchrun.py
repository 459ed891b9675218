"""Launch a script under ``torchrun`` with two gloo processes on the CPU, on loopback only.

Shared by the tests that train on two ranks. The launch is skipped, not failed, where gloo
cannot start at all (a build without it, a sandbox without a loopback socket); once gloo
starts, a failing launch is a failing test.
"""

import functools
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Torch's import and the rendezvous take seconds on a busy 2-core machine; a launch that
# has not finished in this time is hung (a rank waiting for a peer that died).
LAUNCH_TIMEOUT = 180


def _free_loopback_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _loopback_interface() -> str | None:
    """The name of the loopback interface (``lo`` on Linux, ``lo0`` on macOS), if found."""
    names = [name for _, name in socket.if_nameindex()]
    return next((name for name in ("lo", "lo0") if name in names), None)


def _environment() -> dict:
    """This process's environment, importing cwcl_sk from this checkout, on one thread."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}
    interface = _loopback_interface()
    if interface is not None:
        # Without it gloo binds to the address the host name resolves to, which in some
        # containers is not reachable: the ranks would wait for each other until timeout.
        environment["GLOO_SOCKET_IFNAME"] = interface
    return environment


def _run(command: list, timeout: float) -> subprocess.CompletedProcess:
    """Run ``command`` in its own process group, killed whole (workers too) on timeout."""
    with subprocess.Popen(
        command,
        env=_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            # torchrun killed alone would leave its worker processes running.
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
            pytest.fail(f"{command} ran past {timeout} s:\n{stdout[-3000:]}{stderr[-3000:]}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


@functools.cache
def _gloo_failure() -> str | None:
    """Why a gloo process group cannot start on loopback here, or None when it can."""
    probe = (
        "import sys, torch.distributed as dist\n"
        "if not (dist.is_available() and dist.is_gloo_available()):\n"
        "    sys.exit('torch.distributed has no gloo backend')\n"
        f"dist.init_process_group('gloo', init_method='tcp://127.0.0.1:{_free_loopback_port()}',"
        " rank=0, world_size=1)\n"
        "dist.destroy_process_group()\n"
    )
    result = _run([sys.executable, "-c", probe], timeout=LAUNCH_TIMEOUT)
    return None if result.returncode == 0 else (result.stderr or result.stdout)[-2000:]


def torchrun(script: Path, *arguments, nproc: int = 2) -> subprocess.CompletedProcess:
    """Run ``script arguments...`` on ``nproc`` ranks; fail the test if it fails.

    Returns
    -------
    result : subprocess.CompletedProcess
        With the ranks' stdout and stderr as text.
    """
    failure = _gloo_failure()
    if failure is not None:
        pytest.skip(f"gloo cannot start on this machine: {failure}")
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes=1",
        f"--nproc_per_node={nproc}",
        "--master_addr=127.0.0.1",
        f"--master_port={_free_loopback_port()}",
        str(script),
        *map(str, arguments),
    ]
    result = _run(command, timeout=LAUNCH_TIMEOUT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result

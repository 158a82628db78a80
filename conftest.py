"""A one-node SLURM cluster for the tests marked ``slurm``, and the helpers they share.

The session fixture ``slurm_cluster`` starts the cluster with ``tools/slurm_local.sh`` (which
installs SLURM with apt-get where it is missing, and keeps every file of the cluster in a
temporary directory) and stops it, by PID, at the end of the session. Where SLURM cannot be
started (not root, no apt-get, no package mirror) the tests that use it are skipped with the
script's reason, unless ``FREQLAT_REQUIRE_SLURM`` is set (as ``.ci/run`` does), which makes that
an error.

The helpers drive any freqlat command that submits through ``--launcher slurm`` and prints
``submitted job ID; logs in FOLDER``: :meth:`SlurmCluster.submit` calls its ``main`` and returns the
:class:`SlurmJob`; :meth:`SlurmCluster.wait_until` polls a condition while the job lives;
:meth:`SlurmCluster.signal`, :meth:`SlurmCluster.wait_requeued`, :meth:`SlurmCluster.release`
and :meth:`SlurmCluster.wait_completed` make the preemption round trip.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest

SCRIPT = Path(__file__).resolve().parent / "tools" / "slurm_local.sh"
CANNOT_START = 3
"""Exit status of ``slurm_local.sh start`` when SLURM cannot be started on this machine."""
REQUIRE_ENV = "FREQLAT_REQUIRE_SLURM"
TERMINAL_STATES = frozenset(
    {"BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY"}
    | {"PREEMPTED", "TIMEOUT"}
)
SUBMITTED = re.compile(r"submitted job (\d+); logs in (.+)$", re.MULTILINE)
POLL_S = 0.1


@dataclass(frozen=True)
class SlurmJob:
    """A submitted job: its SLURM id and the folder of its submitit logs."""

    job_id: str
    logs: Path

    def log_tail(self, chars: int = 4000) -> str:
        """The end of every submitit log file of the job (for failure messages)."""
        parts = []
        for path in sorted(self.logs.glob(f"{self.job_id}_*_log.*")):
            parts.append(f"--- {path}\n{path.read_text(errors='replace')[-chars:]}")
        return "\n".join(parts) or f"(no submitit logs in {self.logs})"


class SlurmCluster:
    """Clients of the cluster whose config is ``directory/slurm.conf``."""

    partition = "debug"
    """The cluster's one partition."""

    def __init__(self, directory: Path) -> None:
        self.conf = directory / "slurm.conf"

    def _run(self, *command: str) -> str:
        env = {**os.environ, "SLURM_CONF": str(self.conf)}
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=60, check=False
        )
        if done.returncode != 0:
            raise AssertionError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr}")
        return done.stdout

    def submit(self, main: Callable[[list[str]], int], argv: Sequence[str], **env: str) -> SlurmJob:
        """Call a freqlat command's ``main(argv)`` (``argv`` with ``--launcher slurm``); its job.

        The command runs in this process (which has already imported torch and freqlat, so a
        submission costs no start-up) with ``SLURM_CONF`` and ``env`` set in ``os.environ`` for
        the call; sbatch hands that environment to the job (its default ``--export=ALL``).
        """
        printed = io.StringIO()
        environ = {"SLURM_CONF": str(self.conf), **env}
        with mock.patch.dict(os.environ, environ), contextlib.redirect_stdout(printed):
            code = main(list(argv))
        found = SUBMITTED.search(printed.getvalue())
        if code != 0 or found is None:
            raise AssertionError(f"submitting failed (exit {code}): {printed.getvalue()}")
        return SlurmJob(found.group(1), Path(found.group(2).strip()))

    def show(self, job: SlurmJob) -> dict[str, str]:
        """``scontrol show job`` as a dict (``JobState``, ``Reason``, ``Restarts``, ...)."""
        return dict(
            re.findall(r"(\w+)=(\S*)", self._run("scontrol", "show", "job", "-o", job.job_id))
        )

    def wait_until(
        self,
        job: SlurmJob,
        condition: Callable[[dict[str, str]], bool],
        what: str,
        timeout: float = 300.0,
        allow_end: bool = False,
    ) -> dict[str, str]:
        """Poll ``condition(job's scontrol fields)`` until true; returns those fields.

        Fails with the job's state and logs after ``timeout`` seconds, or as soon as the job has
        ended (unless ``allow_end``), since then the condition can no longer change.
        """
        deadline = time.monotonic() + timeout
        while True:
            fields = self.show(job)
            if condition(fields):
                return fields
            ended = fields.get("JobState") in TERMINAL_STATES
            if (ended and not allow_end) or time.monotonic() > deadline:
                why = "the job ended" if ended else f"{timeout:.0f} s passed"
                raise AssertionError(
                    f"job {job.job_id}: {why} before {what}; state {fields.get('JobState')} "
                    f"({fields.get('Reason')})\n{job.log_tail()}"
                )
            time.sleep(POLL_S)

    def wait_completed(self, job: SlurmJob, timeout: float = 300.0) -> dict[str, str]:
        """Wait for the job to end and assert that it COMPLETED (exit code 0)."""
        fields = self.wait_until(
            job,
            lambda f: f.get("JobState") in TERMINAL_STATES,
            "it ended",
            timeout,
            allow_end=True,
        )
        assert fields["JobState"] == "COMPLETED", (
            f"job {job.job_id} ended {fields['JobState']} (exit {fields.get('ExitCode')})\n"
            f"{job.log_tail()}"
        )
        return fields

    def signal(self, job: SlurmJob, name: str) -> None:
        """Send signal ``name`` (e.g. ``USR2``) to the job's tasks, as SLURM does before its end."""
        self._run("scancel", f"--signal={name}", job.job_id)

    def wait_requeued(
        self, job: SlurmJob, restarts: int = 1, timeout: float = 300.0
    ) -> dict[str, str]:
        """Wait until the job is pending again after its ``restarts``-th requeue."""
        return self.wait_until(
            job,
            lambda f: f.get("JobState") == "PENDING" and int(f.get("Restarts", 0)) >= restarts,
            f"requeue number {restarts}",
            timeout,
        )

    def release(self, job: SlurmJob) -> None:
        """Let a requeued job start now (SLURM holds it back until a begin time after a requeue)."""
        self._run("scontrol", "update", f"JobId={job.job_id}", "StartTime=now")


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    """A running one-node SLURM cluster for this session (see the module docstring)."""
    directory = Path(tempfile.mkdtemp(prefix="freqlat-slurm-"))
    started = subprocess.run(
        ["bash", str(SCRIPT), "start", str(directory)],
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if started.returncode != 0:
        shutil.rmtree(directory, ignore_errors=True)
        reason = started.stderr.strip() or f"exit status {started.returncode}"
        if started.returncode == CANNOT_START and not os.environ.get(REQUIRE_ENV):
            pytest.skip(reason.splitlines()[-1])
        pytest.fail(f"tools/slurm_local.sh start failed:\n{reason}", pytrace=False)
    try:
        yield SlurmCluster(directory)
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", str(directory)], timeout=120, check=False)
        shutil.rmtree(directory, ignore_errors=True)

"""Run `python -m pipeline.<entry> <args>` commands without paying Python's imports each time.

The first such command of a pytest process starts a warm interpreter, `python -m tests.entry_zygote`, which
imports the stages once and then, for as long as the pytest process lives, forks one child per command. The
child runs the entry module as `__main__`, as `python -m` does, in a session of its own (so that killing its
process group kills the command and the ranks it started), with the command's argv, environment, stdout/stderr
files and exit status; only the already-imported libraries are shared. A fresh `python -m` spends ~6 s importing
torch, MLflow and the stages; a forked child none. tests/test_bad_config.py checks that both ways give the same
exit status and message.

A job is {"entry", "args", "env", "stdout", "stderr"} and optionally "setup", Python code the child runs first
(a test's fault injection). The entry is a module of `pipeline` run by `python -m`: `train`, `predict`, `study`...
The warm interpreter works from the repository's folder with the code there: a test of another checkout of the
code (tests/test_team.py) starts fresh processes in it instead.
"""

from __future__ import annotations

import functools
import gc
import importlib
import json
import os
import runpy
import subprocess
import sys
import threading
import time
import traceback
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WARM = (
    *(f"pipeline.stages.{stage}" for stage in ("prepare", "train", "evaluate", "register", "workflow", "predict")),
    "pipeline.study.runner",
    "pipeline.sweep.sweeper",  # what the sweeper plugin imports when `-m hparams_search=...` runs a sweep
    "torch._dynamo",  # torch.optim imports it when a job makes its first optimizer
)


class EntryPoint:
    """A command running in a child of the warm interpreter, with what a `subprocess.Popen` of it offers: its
    `pid` (the id of its process group too), `poll()`, `wait()` and `returncode` (-N when signal N ended it)."""

    def __init__(self, job: dict):
        self.job, self.returncode = job, None
        self.pid = warm_interpreter().ask({"start": job})

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = warm_interpreter().ask({"poll": self.pid})
        return self.returncode

    def wait(self, timeout: float = 600) -> int:
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"python -m pipeline.{self.job['entry']} still running after {timeout} s")
            time.sleep(0.05)
        return self.returncode


def entry_job(entry: str, args: list[str], env: dict, folder: Path) -> dict:
    """The job of `python -m pipeline.<entry> <args>` in `env`, its stdout and stderr kept in files in `folder`."""
    name = folder / f"{entry}-{uuid.uuid4().hex[:8]}"
    return {"entry": entry, "args": list(args), "env": env, "stdout": f"{name}.out", "stderr": f"{name}.err"}


def run_entry_point(entry: str, *args: str, env: dict, folder: Path) -> subprocess.CompletedProcess:
    """`python -m pipeline.<entry> <args>` run to its end: what `subprocess.run(..., capture_output=True,
    text=True)` returns for it."""
    [job] = run_entry_points([entry_job(entry, list(args), env, folder)])
    output = (Path(job[stream]).read_text() for stream in ("stdout", "stderr"))
    return subprocess.CompletedProcess(["python", "-m", f"pipeline.{entry}", *args], job["returncode"], *output)


def run_entry_points(jobs: list[dict], together: bool = False) -> list[dict]:
    """Run `jobs` one after another, or with `together` all at the same time (races); returns them, each with
    its "returncode"."""
    if together:
        started = [EntryPoint(job) for job in jobs]
        return [{**job, "returncode": command.wait()} for job, command in zip(jobs, started)]
    return [{**job, "returncode": EntryPoint(job).wait()} for job in jobs]


class WarmInterpreter:
    """The client's end of `python -m tests.entry_zygote`: one request and its answer at a time, as JSON lines
    (threads may share it). The interpreter ends when this process does, as its stdin closes."""

    def __init__(self):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.entry_zygote"],  # from the repository's folder, as `python -m` runs
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env={**os.environ, "OMP_NUM_THREADS": "1"},  # read when torch loads, before any job's environment
        )
        self.lock = threading.Lock()

    def ask(self, request: dict):
        with self.lock:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            answer = self.process.stdout.readline()
        assert answer, f"the warm interpreter ended ({self.process.poll()}); its errors are in the test's output"
        return json.loads(answer)


@functools.cache
def warm_interpreter() -> WarmInterpreter:
    """This process's warm interpreter, started on first use."""
    return WarmInterpreter()


def run_child(job: dict) -> int:
    """In the forked child: become `python -m pipeline.<entry> <args>`; return its exit status."""
    os.setsid()
    os.environ.clear()
    os.environ.update(job["env"])
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    for fd, path in ((1, job["stdout"]), (2, job["stderr"])):
        os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
    sys.argv = ["-m", *job["args"]]  # runpy puts the module's path in argv[0], as `python -m` does
    try:
        exec(job.get("setup", ""), {})
        runpy.run_module(f"pipeline.{job['entry']}", run_name="__main__", alter_sys=True)
        return 0
    except SystemExit as exit_:
        if exit_.code is None or isinstance(exit_.code, int):
            return exit_.code or 0
        print(exit_.code, file=sys.stderr)  # what the interpreter does with `sys.exit("message")`
        return 1
    except BaseException:  # noqa: BLE001 - an uncaught exception: print it as the interpreter would
        traceback.print_exc()
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


def fork(job: dict, channel) -> int:
    """Start `job` in a child process; returns its pid."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            channel.close()  # the requests and answers are the parent's alone
            code = run_child(job)
        finally:
            os._exit(code)
    return pid


def returncode(pid: int) -> int | None:
    """The exit status of child `pid` once it has ended (reaping it), else None."""
    done, status = os.waitpid(pid, os.WNOHANG)
    return os.waitstatus_to_exitcode(status) if done else None


def serve() -> None:
    """Import what the entries run, then answer {"start": job} with the child's pid and {"poll": pid} with its
    exit status (None while it runs), until stdin closes."""
    channel = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything an import prints goes to stderr, not into the answers
    for name in WARM:
        importlib.import_module(name)
    gc.freeze()  # children never scan the imported objects, which would copy every page they share with us
    while line := sys.stdin.readline():
        request = json.loads(line)
        answer = fork(request["start"], channel) if "start" in request else returncode(request["poll"])
        channel.write(json.dumps(answer) + "\n")
        channel.flush()


if __name__ == "__main__":
    serve()

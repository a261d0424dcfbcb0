"""Run many `python -m pipeline.<entry> <args>` commands without paying Python's imports each time.

`python tests/entry_zygote.py JOBS.json` imports the stages' library once, then forks one child per job. The
child runs the entry module as `__main__`, as `python -m` does, with the job's own argv, environment,
stdout/stderr files and exit status; only the already-imported libraries are shared. A fresh `python -m`
spends ~4 s importing torch and MLflow, so a table of 30 failing commands would take minutes instead of
seconds. tests/test_bad_config.py checks that both ways give the same exit status and message.

JOBS.json: a list of {"entry", "args", "env", "stdout", "stderr"} and optionally "setup", Python code the child
runs first (a test's fault injection); each job gets a "returncode" written back.
With `--together` all children are forked before any is waited for, so they run at the same time (races).
"""

from __future__ import annotations

import importlib
import json
import os
import runpy
import subprocess
import sys
import traceback
from pathlib import Path

STAGES = ("prepare", "train", "evaluate", "register", "workflow")  # pipeline.stages.*, what the entries run


def run_entry_points(jobs: list[dict], folder: Path, together: bool = False) -> list[dict]:
    """From a test: run `jobs` through a zygote process; returns them, each with its "returncode"."""
    jobs_file = folder / "jobs.json"
    jobs_file.write_text(json.dumps(jobs))
    subprocess.run(
        [sys.executable, __file__, str(jobs_file), *(["--together"] if together else [])],
        check=True,
        cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=600,
    )
    return json.loads(jobs_file.read_text())


def run_child(job: dict) -> int:
    """In the forked child: become `python -m pipeline.<entry> <args>`; return its exit status."""
    os.environ.clear()
    os.environ.update(job["env"])
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


def fork(job: dict) -> int:
    """Start `job` in a child process; returns its pid."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = run_child(job)
        finally:
            os._exit(code)
    return pid


def main(jobs_file: Path, together: bool) -> None:
    for stage in STAGES:
        importlib.import_module(f"pipeline.stages.{stage}")
    jobs = json.loads(jobs_file.read_text())
    pids = [fork(job) for job in jobs] if together else []
    for i, job in enumerate(jobs):
        pid = pids[i] if together else fork(job)
        job["returncode"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    jobs_file.write_text(json.dumps(jobs))


if __name__ == "__main__":
    main(Path(sys.argv[1]), together="--together" in sys.argv[2:])

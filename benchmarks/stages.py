"""Run one ``kmtalk`` command in a fresh process and split its time and memory by stage.

The child runs the real CLI (the console script's entry point, exit included) with its stage reporter (``kmtalk_cli.progress``) replaced by a recorder, so the stages are
the ones a user sees (start-up, loading the model, aligning, key motions, completion, …) plus
``writing`` (from the last stage's end to the process's exit: the motion's last piece, the
``.keys.npz``, ``.align.json``). Start-up counts from the moment the process is spawned.
Peak RSS is the kernel's figure for the child (``wait4``); per stage it is the peak *by the end
of* that stage.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

_CHILD = r"""
import atexit, contextlib, json, resource, sys, time
marks = []
def mark(name):
    marks.append((name, time.time(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024))
def report():
    mark("end")
    with open(report_path, "w") as fh:
        json.dump({"marks": marks}, fh)
report_path = sys.argv[1]
atexit.register(report)  # the console script's exit runs it too
import kmtalk_cli.progress as progress
@contextlib.contextmanager
def recorder(self, *, enabled=True):
    yield mark
    mark("writing")
progress.Reporter.steps = recorder
from kmtalk_cli.__main__ import main
sys.argv = ["kmtalk", *sys.argv[2:]]
main()
"""

#: Stage names as the CLI announces them → short column names.
SHORT = {
    "Loading the model": "model load",
    "Aligning the speech to its transcript": "alignment",
    "Aligning the speech (recognising the words)": "alignment",
    "Predicting key motions": "key motions",
    "Completing the motion": "completion",
    "writing": "writing",
}


@dataclass(frozen=True)
class Run:
    wall: float
    peak_rss: int  # bytes
    stages: dict[str, float]  # seconds per stage, in order
    stage_peaks: dict[str, int]  # peak RSS (bytes) by the end of each stage


def run_stages(args: list[str], *, cwd: str | None = None, env: dict[str, str] | None = None) -> Run:
    """``kmtalk ARGS`` in a child process; its wall time, peak RSS and stage split."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        report = fh.name
    began = time.time()
    child = subprocess.Popen([sys.executable, "-c", _CHILD, report, *args], cwd=cwd, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    stderr = child.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.time() - began
    try:
        with open(report) as fh:
            data = json.load(fh)
    finally:
        os.unlink(report)
    if child.returncode:
        raise RuntimeError(f"kmtalk {' '.join(args)} failed: {stderr.strip()[-500:]}")
    stages: dict[str, float] = {}
    peaks: dict[str, int] = {}
    previous_name, previous_time = "start-up", began
    for name, at, peak in data["marks"]:
        key = SHORT.get(previous_name, previous_name)
        stages[key] = stages.get(key, 0.0) + at - previous_time
        peaks[key] = max(peaks.get(key, 0), peak)
        previous_name, previous_time = name, at
    stages["writing"] = stages.get("writing", 0.0) + (began + wall - previous_time)  # exit, interpreter teardown
    return Run(wall, usage.ru_maxrss * 1024, stages, peaks)

"""The clients Cortex handed to predictors: `python_client`, `tensorflow_client`, `onnx_client`.

Each serves the API's models by name and version (../models.py, over ../model_sources.py); the
TensorFlow and ONNX modules import their framework only when used, so a Python predictor never
pays for them.
"""

from __future__ import annotations

import os
from pathlib import Path


class ModelLoadError(Exception):
    """A model file exists but the framework cannot load it (the message names model and path)."""


class ModelInputError(ValueError):
    """The input given to client.predict does not fit the model (names the input, the expected
    shape and dtype, and what was given)."""


def available_cpus() -> int:
    """CPUs this process may use: the affinity mask, capped by a cgroup v2 CPU quota (a
    container's `--cpus`), which os.cpu_count() ignores."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cpus = cpus or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, int(int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return cpus


def intra_op_threads(processes: int, threads_per_process: int) -> int:
    """Threads one model run may use, so that every process x thread running at once shares the
    CPUs instead of oversubscribing them (each would otherwise take all cores)."""
    return max(1, available_cpus() // max(1, processes * threads_per_process))

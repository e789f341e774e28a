"""What differs by kind: a RealtimeAPI serves requests, a BatchAPI (Cortex v0.19-v0.35) and a
TaskAPI (v0.27-v0.35) are jobs run to their end. The one place for the rules of job kinds:
which section holds their code, which sections they do not have, and what their file defines.

Cortex's job kinds had no autoscaling, update_strategy or tracker and ran one process per worker
(https://github.com/cortexlabs/cortex/blob/v0.30.0/docs/workloads/batch/configuration.md,
https://github.com/cortexlabs/cortex/blob/v0.30.0/docs/workloads/task/configuration.md): the
number of workers came with each job.
"""

from __future__ import annotations

import ast

from cortex_serve.contract import (
    BATCH_METHODS,
    HANDLER_CLASS,
    PREDICTOR_CLASSES,
    TASK_CLASS,
)

from .reader import ReaderBase

# Sections (or fields) a job kind does not have, and why, for the message.
_NOT_FOR_JOBS = {
    "autoscaling": "a job's number of workers comes with each job (`workers`), not from "
    "autoscaling",
    "update_strategy": "a job runs to its end; there is no rolling update",
    "tracker": "prediction tracking is for realtime APIs",
    "predictor.processes_per_replica": "a job worker is one process handling one batch at a time",
    "predictor.threads_per_process": "a job worker is one process handling one batch at a time",
}
# The section each kind gives its code in.
_CODE_SECTIONS = {
    "TaskAPI": ("definition",),
    "BatchAPI": ("predictor", "handler"),
}


def code_section_problem(kind: str | None, given: list[str]) -> str | None:
    """Why the sections `given` (of predictor, handler, definition, ...) do not fit `kind`."""
    if kind == "TaskAPI":
        wrong = [key for key in given if key != "definition"]
        if wrong:
            return f"a TaskAPI gives its Task as definition: (Cortex v0.27-v0.35), not {wrong[0]}:"
        if not given:
            return "must be provided (the Task: its path, config, ...)"
        return None
    if "definition" in given:
        return (
            "is a TaskAPI's section (Cortex v0.27-v0.35); a "
            f"{kind or 'RealtimeAPI'} gives its code as predictor: or handler:"
        )
    if kind == "BatchAPI":
        wrong = [key for key in given if key not in _CODE_SECTIONS["BatchAPI"]]
        if wrong:
            return f"a BatchAPI gives its code as predictor: or handler:, not {wrong[0]}:"
    return None


class KindRules(ReaderBase):
    kind: str = "RealtimeAPI"  # set by ApiReader.read

    def _check_kind_fields(self) -> None:
        """A job kind with a section only realtime APIs have: one error per section."""
        if self.kind not in _CODE_SECTIONS:
            return
        given = [(self.values[t], t, why) for t, why in _NOT_FOR_JOBS.items() if t in self.values]
        for found, target, why in sorted(given, key=lambda entry: entry[0].line):
            self.error_at(found, f"a {self.kind} has no {target}: {why}")
        batching = self.values.get("predictor.server_side_batching")
        if batching is not None:
            self.note(
                batching.line,
                batching.written,
                "ignored: a job's batches are those of the job (batch_size), handed to "
                "predict whole",
            )

    def _job_file_rule(
        self, names: dict[str, ast.AST], path: str, ptype: str, interface: str
    ) -> str | None:
        """What a job kind's file must define: the class and its per-batch or __call__ method
        (None when the class is imported or inherited, whose methods cannot be seen here)."""
        if self.kind == "TaskAPI":
            class_name, method = TASK_CLASS, "__call__"
        else:
            class_name = HANDLER_CLASS if interface == "handler" else PREDICTOR_CLASSES[ptype]
            method = BATCH_METHODS[interface]
        node = names.get(class_name)
        if node is None:
            return f"{path} defines no class {class_name} (expected for a {self.kind})"
        if not isinstance(node, ast.ClassDef) or node.bases:
            return None
        methods = {
            stmt.name
            for stmt in node.body
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef))
        }
        if method not in methods:
            what = "the task" if self.kind == "TaskAPI" else "once per batch"
            return f"class {class_name} in {path} defines no {method} method (called {what})"
        return None

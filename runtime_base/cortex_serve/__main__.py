"""`python -m cortex_serve --spec api.json --project DIR [--host H] [--port P]`

Prepares the process the way Cortex's containers were prepared, then becomes the gunicorn master:
- the working directory is the project (predictors open project files by relative path);
- the project root and `predictor.python_path` go on sys.path (and PYTHONPATH, for subprocesses);
- `predictor.env` is set before the user's module is imported. A variable already in the
  environment wins: in images `.env` arrives that way (compose env_file, a Kubernetes Secret),
  and Cortex sourced `.env` after applying `predictor.env`; natively `cortex-build serve` passes
  `.env` the same way.

Server settings that are not part of cortex.yaml come from options or the environment
(CORTEX_SERVE_*: see _FROM_ENVIRONMENT, or --help); every number read from the environment is
checked first (settings.py). `cortex-build serve` passes `--parent-fd` and
`--remove-spec`: the server stops when that command ends, even by SIGKILL, and its temporary spec
file is gone once read.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

from cortex_internal.lib.log import configure_logging

from . import settings
from .server import CortexServer, ServerOptions
from .settings import NumberSetting

DEFAULTS = ServerOptions()
# ServerOptions fields that images set through the environment (compose, Kubernetes), each an
# option named after its field and read from CORTEX_SERVE_<FIELD>: {field: what it is}.
_FROM_ENVIRONMENT = {
    "max_body_bytes": "larger request bodies get 413",
    "graceful_timeout": "seconds in-flight requests get after SIGTERM",
    "keepalive": "seconds an idle keep-alive connection stays open",
    "read_timeout": "seconds a request may take to arrive whole, head and body (408 after)",
    "max_header_bytes": "larger request heads get 431",
    "max_header_line_bytes": "a longer URL gets 414, a longer header 431",
    "max_headers": "more request headers get 431",
    "worker_timeout": "seconds a blocked event loop is tolerated",
    "batch_scheduling": "1: worker threads under Linux's SCHED_BATCH (fewer preemptions); 0: not",
}
SERVER_SETTINGS = {
    field: NumberSetting(f"CORTEX_SERVE_{field.upper()}", getattr(DEFAULTS, field), whole=True)
    for field in _FROM_ENVIRONMENT
}


def check_settings() -> None:
    """Every number the runtime reads from the environment, before anything starts."""
    found = settings.problems([*SERVER_SETTINGS.values(), *settings.RUNTIME_SETTINGS])
    if found:
        sys.exit("cortex_serve: " + "; ".join(found))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m cortex_serve", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--spec", required=True, type=Path, help="api.json (cortex_build ApiSpec)")
    parser.add_argument("--project", required=True, type=Path, help="the project folder")
    parser.add_argument("--host", default=DEFAULTS.host, help="default: %(default)s")
    parser.add_argument("--port", type=int, default=DEFAULTS.port, help="default: %(default)s")
    for field, text in _FROM_ENVIRONMENT.items():
        setting = SERVER_SETTINGS[field]
        parser.add_argument(
            f"--{field.replace('_', '-')}",
            type=int,
            default=int(setting.read()),
            help=f"{text} (env {setting.name}; default %(default)s)",
        )
    parser.add_argument(
        "--reload",
        action="store_true",
        help="development: restart a process when a Python file it imported changes",
    )
    parser.add_argument(
        "--parent-fd",
        type=int,
        metavar="FD",
        help="the read end of a pipe whose write end the caller keeps open: the server stops (as "
        "on SIGTERM) once it closes, that is once the caller ended, however it ended",
    )
    parser.add_argument(
        "--remove-spec",
        action="store_true",
        help="delete the spec file once read, and its folder if that leaves it empty",
    )
    return parser.parse_args(argv)


def prepare_process(spec: dict[str, Any], project_dir: Path) -> None:
    """Working directory, import path and environment, before any user code runs."""
    os.chdir(project_dir)
    predictor = spec["predictor"]
    paths = [str(project_dir)]
    if predictor.get("python_path"):
        paths.insert(0, str((project_dir / predictor["python_path"]).resolve()))
    for path in reversed(paths):
        if path not in sys.path:
            sys.path.insert(0, path)
    existing = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([*paths, *([existing] if existing else [])])
    for key, value in (predictor.get("env") or {}).items():
        os.environ.setdefault(key, str(value))


def main(argv: list[str] | None = None) -> None:
    check_settings()
    args = parse_args(argv)
    try:
        spec = json.loads(args.spec.read_text())
    except (OSError, ValueError) as error:
        sys.exit(f"cortex_serve: cannot read the API spec {args.spec}: {error}")
    finally:
        if args.remove_spec:  # a caller's temporary file: gone even if the caller is killed
            with contextlib.suppress(OSError):
                args.spec.unlink()
                args.spec.parent.rmdir()
    if args.parent_fd is not None:
        try:
            os.fstat(args.parent_fd)
        except OSError as error:
            sys.exit(f"cortex_serve: --parent-fd {args.parent_fd}: {error}")
    project_dir = args.project.resolve()
    if not project_dir.is_dir():
        sys.exit(f"cortex_serve: the project folder {project_dir} does not exist")
    prepare_process(spec, project_dir)
    configure_logging(spec["predictor"].get("log_level", "info"))
    # every ServerOptions field is an option of the same name
    options = ServerOptions(
        **{f.name: getattr(args, f.name) for f in dataclasses.fields(ServerOptions)}
    )
    CortexServer(spec, project_dir, options).run()


if __name__ == "__main__":
    main()

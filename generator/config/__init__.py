"""Reading cortex.yaml, any generation, into one normalized `Project` (see spec.py).

Reading happens in two passes per API. The table walk (walk.py, over the schema package's
tables) checks every key and value where it is written and files it under its newest name; the
build pass (api.py) applies defaults and the rules that involve several fields, one concern
per module: predictor.py (the predictor section), predictor_file.py (what the file must define),
models.py (model paths and layouts), scaling.py (compute, autoscaling, update strategy, tracker);
containers.py reads Cortex v0.36+'s APIs, given as containers (`pod:`). The
release a config was written against is recognised in releases.py. Every problem found goes into
one `UserError`, so the user fixes the whole file in one round.
"""

from __future__ import annotations

from pathlib import Path

from .. import schema
from ..errors import UserError, option_problem
from ..spec import Project
from . import releases
from .models import model_layout_problem
from .project import ProjectReader
from .reporting import Reporter, show, unknown_key_message

__all__ = ["DEFAULT_CONFIG_NAME", "load_project", "model_layout_problem", "unknown_key_message"]

DEFAULT_CONFIG_NAME = "cortex.yaml"


def load_project(
    project_dir: Path, config_file: Path | None = None, cortex_version: str | None = None
) -> Project:
    """Reads and validates the project's config; raises UserError listing every problem.

    `cortex_version` ("0.15") is the Cortex release the project was written for, where its
    config shape leaves several (see releases.py)."""
    if cortex_version is not None:
        try:
            releases.parse_cortex_version(cortex_version)
        except ValueError as err:
            raise UserError(option_problem("--cortex-version", str(err))) from None
    root = Path(project_dir)
    config_path, display = _locate_config(root, config_file)
    reporter = Reporter(display)
    if not root.is_dir():
        reporter.error(
            None,
            None,
            None,
            f"the project folder {show(str(root), limit=1000)} "
            + ("is not a folder" if root.exists() else "does not exist"),
        )
        raise UserError(reporter.problems)
    try:
        text = config_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        hint = "" if config_file else " in the project folder (name another file with -c FILE)"
        reporter.error(None, None, None, f"file not found{hint}")
        raise UserError(reporter.problems) from None
    except (OSError, UnicodeDecodeError) as err:
        reporter.error(None, None, None, f"cannot be read: {err}")
        raise UserError(reporter.problems) from None
    reader = ProjectReader(root.resolve(), reporter, cortex_version)
    apis = reader.read(text)
    if not apis and not reader.container_apis and reader.skipped and not reporter.problems:
        kinds = "; ".join(
            f"{kind}: {schema.UNSUPPORTED_KINDS[kind]}"
            for kind in sorted(set(reader.skipped.values()))
        )
        reporter.error(
            None,
            None,
            None,
            f"holds no API that cortex-build serves (only {kinds}); it builds realtime APIs "
            "(kind: RealtimeAPI, SyncAPI, api, or no kind), BatchAPI and TaskAPI jobs",
        )
    if reporter.problems:
        raise UserError(reporter.problems)
    return Project(
        root=root,
        config_file=config_path,
        apis=tuple(apis),
        notes=tuple(str(note) for note in sorted(reporter.notes, key=lambda n: n.line or 0)),
        skipped=reader.skipped,
        container_apis=tuple(reader.container_apis),
        splitters=tuple(reader.splitters),
    )


def _locate_config(root: Path, config_file: Path | None) -> tuple[Path, str]:
    """The config path and the name messages show: as the user gave it, else "cortex.yaml"."""
    if config_file is None:
        return root / DEFAULT_CONFIG_NAME, DEFAULT_CONFIG_NAME
    config_file = Path(config_file)
    if not config_file.is_absolute() and not config_file.exists():
        # `-c prod.yaml` with a project folder: the file may live in the project
        in_project = root / config_file
        if in_project.exists():
            return in_project, str(config_file)
    return config_file, str(config_file)

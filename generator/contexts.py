"""The build contexts, OUT/<name>/: one writer per kind of image cortex-build builds (an API's,
a traffic splitter's, a container BatchAPI's batch worker), each what `docker build` needs.

An API's context:

    Dockerfile                    templates/Dockerfile.jinja
    cortex/api.json               the normalized spec (ApiSpec.to_json), model paths rewritten
    cortex/entrypoint.sh          execs `python -m cortex_serve ...`
    cortex/runtime-requirements.txt   the runtime's ranges (the constraints of later layers)
    cortex/runtime-requirements.lock  the same packages pinned with hashes (runtime_lock.py)
    cortex/install-requirements.sh
    deps/requirements.txt, deps/dependencies.sh   (when the project has them)
    runtime/                      cortex_serve/ and cortex_internal/ as installed (runtime_files.py)
    models/<name>/                the models (an image layer of their own; image_models.py)
    project/                      the project files (project_files.py), the image's /mnt/project

Every value that reaches a Dockerfile or a shell script is validated (render_options.py) or
quoted for its syntax by the templates' filters (templating.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cortex_serve.model_cache import DEFAULT_CACHE_DIR as MODEL_CACHE_DIR

from . import __version__, images, jobs, runtime_files, runtime_lock, splitters
from .compose import HEALTHCHECK, HEALTHCHECK_START_PERIOD, JOB_FOLDER
from .image_models import MODEL_DIR, image_models, project_entries
from .out_folder import project_name
from .project_files import ProjectEntry, ProjectFiles
from .spec import SERVER_PORT, ApiSpec, Project, SplitterSpec
from .templating import render_template
from .writing import copy_file, copy_tree, write_text

if TYPE_CHECKING:  # render.py builds these and calls the writers
    from .render import RenderedApi

# Where things live in the image (the runtime's command line is fixed by cortex_serve).
CORTEX_DIR = "/opt/cortex"
RUNTIME_DIR = f"{CORTEX_DIR}/runtime"
PROJECT_DIR = "/mnt/project"
USER_DIR = "/mnt/user"


def render_context(
    context: Path,
    project: Project,
    files: ProjectFiles,
    api: ApiSpec,
    target: RenderedApi,
    *,
    models_at_start: bool = False,
    preinstalled: tuple[str, ...] = (),
) -> None:
    """OUT/<api>: an API's image, its predictor code on its framework's base image.
    `preinstalled`: the requirements Cortex pre-installed that the image adds (preinstalled.py)."""
    context.mkdir(mode=0o755)
    cortex = context / "cortex"
    models = image_models(project, api, context / "models", models_at_start)
    framework = images.framework_packages(api)
    requirements = files.shipped_file(api.predictor.dependencies.pip)
    dependencies = files.shipped_file(api.predictor.dependencies.shell)
    values = {
        **_image_values(
            project,
            target,
            f"Cortex {api.predictor.type} API {api.name}, built by cortex-build",
            models.spec.to_dict(),
        ),
        "predictor_type": api.predictor.type,
        "generation": api.generation,
        "framework_packages": framework,
        "has_dependencies": dependencies is not None,
        "has_requirements": requirements is not None,
        "preinstalled": preinstalled,
        "cortex_release": api.cortex.assumed,
        "has_models": bool(models.copies) or models.fetched,
        "model_dir": MODEL_DIR,
        "start_period": HEALTHCHECK_START_PERIOD,
        "kind": api.kind,
        "is_job": api.is_job,
        "job_spec": f"{jobs.JOB_SPEC_DIR}/{jobs.JOB_FILE}",
    }
    write_text(context / "Dockerfile", render_template("Dockerfile.jinja", values))
    write_text(cortex / "api.json", models.spec.to_json())
    write_text(cortex / "entrypoint.sh", render_template("entrypoint.sh.jinja", values), 0o755)
    if api.is_job:  # a job to start from, which compose mounts at /cortex/spec (jobs.py)
        write_text(context / JOB_FOLDER / jobs.JOB_FILE, jobs.job_text(jobs.sample_job(api)))
    extra = ""
    if framework:
        extra += f"# the {api.predictor.type} client\n" + "".join(
            f"{requirement}\n" for requirement in framework
        )
    if models.packages:
        extra += ("# models fetched at start (s3://: boto3, http(s)://: urllib3)\n") + "".join(
            f"{requirement}\n" for requirement in models.packages
        )
    _write_runtime(context, extra)
    if requirements is not None:
        write_text(
            cortex / "install-requirements.sh",
            render_template("install-requirements.sh.jinja", values),
            0o755,
        )
        copy_file(requirements, context / "deps" / "requirements.txt")
    if dependencies is not None:
        copy_file(dependencies, context / "deps" / "dependencies.sh")
    if preinstalled:
        listed = "".join(f"{requirement}\n" for requirement in preinstalled)
        write_text(
            context / "deps" / "cortex-preinstalled.txt",
            f"# Packages Cortex {api.cortex.assumed} pre-installed that the project imports "
            "without listing them\n" + listed,
        )
    for source, name in models.copies:
        _copy_model(source, context / "models" / name if name else context / "models")
    (context / "project").mkdir(mode=0o755)
    for entry in project_entries(files, models.moved):
        _place_entry(entry, context / "project")


def render_splitter_context(
    context: Path, project: Project, splitter: SplitterSpec, target: RenderedApi
) -> None:
    """OUT/<splitter>: Dockerfile (templates/Dockerfile.splitter.jinja), cortex/splitter.json,
    the runtime's requirements and lock, runtime/."""
    context.mkdir(mode=0o755)
    spec = splitters.spec_json(splitter, splitters.all_apis(project))
    values = {
        **_image_values(
            project,
            target,
            f"Cortex traffic splitter {splitter.name}, built by cortex-build",
            json.loads(spec),
        ),
        "framework_packages": (),
    }
    write_text(context / "Dockerfile", render_template("Dockerfile.splitter.jinja", values))
    write_text(context / "cortex" / splitters.SPEC_FILE, spec)
    _write_runtime(context)


def render_worker_context(context: Path, project: Project, worker: RenderedApi) -> None:
    """OUT/<api>/ of a container BatchAPI: the batch worker's image (templates/
    dequeuer.Dockerfile.jinja), the runtime's cortex_serve package on a python3 image."""
    context.mkdir(mode=0o755)
    write_text(
        context / "Dockerfile",
        render_template(
            "dequeuer.Dockerfile.jinja",
            {
                "api_name": worker.name,
                "config_name": project.config_file.name,
                "image": worker.image,
                "base_image": worker.base_image,
                "runtime_dir": RUNTIME_DIR,
                "project_name": project_name(project),
                "uid": images.USER_ID,
            },
        ),
    )
    copy_tree(runtime_files.package_dirs()["cortex_serve"], context / "runtime" / "cortex_serve")


def _image_values(
    project: Project, target: RenderedApi, description: str, spec: dict[str, Any]
) -> dict[str, Any]:
    """What the Dockerfiles of the images that run the whole runtime (an API's, a traffic
    splitter's) share: its labels, where things live in it, its user, port and health check."""
    return {
        "api_name": target.name,
        "config_name": project.config_file.name,
        "image": target.image,
        "base_image": target.base_image,
        "description": description,
        "version": __version__,
        "project_name": project_name(project),  # "." names its folder
        # the spec in one line (ASCII, control characters escaped by JSON): a label value
        "spec_label": json.dumps(spec, sort_keys=True, separators=(",", ":")),
        "cortex_dir": CORTEX_DIR,
        "runtime_dir": RUNTIME_DIR,
        "project_dir": PROJECT_DIR,
        "user_dir": USER_DIR,
        "model_cache_dir": MODEL_CACHE_DIR,
        "uid": images.USER_ID,
        "port": SERVER_PORT,
        "healthcheck": HEALTHCHECK,
        "lock_python": runtime_lock.load_lock().python,
    }


def _write_runtime(context: Path, extra_requirements: str = "") -> None:
    """The runtime's requirements (its ranges, then `extra_requirements`: lines with their
    comment), the same packages pinned by the runtime's lock, and its packages under runtime/."""
    requirements = runtime_files.REQUIREMENTS_FILE.read_text(encoding="utf-8") + extra_requirements
    write_text(context / "cortex" / "runtime-requirements.txt", requirements)
    # The same packages at the exact versions of the runtime's lock (runtime_lock.py), which the
    # image installs when its Python is the lock's; the ranges above stay the constraints.
    write_text(
        context / "cortex" / "runtime-requirements.lock",
        runtime_lock.load_lock().render(requirements.splitlines()),
    )
    for package, folder in runtime_files.package_dirs().items():
        copy_tree(folder, context / "runtime" / package)


def _copy_model(source: Path, target: Path) -> None:
    if source.is_dir():
        copy_tree(source, target, skip_hidden=True)
    else:
        copy_file(source, target / source.name)


def _place_entry(entry: ProjectEntry, project_dir: Path) -> None:
    target = project_dir / entry.path
    if entry.link_target is not None:
        target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        os.symlink(entry.link_target, target)
    else:
        assert entry.source is not None
        copy_file(entry.source, target)

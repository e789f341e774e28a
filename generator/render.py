"""`cortex-build render`: per API a Docker build context, plus docker-compose.yaml and k8s/.

OUT/<api>/ holds everything `docker build OUT/<api>` needs:

    Dockerfile                    templates/Dockerfile.jinja
    cortex/api.json               the normalized spec (ApiSpec.to_json), model paths rewritten
    cortex/entrypoint.sh          execs `python -m cortex_serve ...`
    cortex/runtime-requirements.txt   the runtime's ranges (the constraints of later layers)
    cortex/runtime-requirements.lock  the same packages pinned with hashes (runtime_lock.py)
    cortex/install-requirements.sh
    deps/requirements.txt, deps/dependencies.sh   (when the project has them)
    runtime/                      cortex_serve/ and cortex_internal/ as installed (runtime_files.py)
    models/<name>/                the models (an image layer of their own): local ones copied,
                                  remote ones (s3://, http(s)://) fetched now, unless
                                  --models-at-start leaves them to the runtime
    project/                      the project files (project_files.py), the image's /mnt/project

Rendering is deterministic (same input, same bytes and file modes) and atomic: everything is
written into a temporary folder beside OUT, which replaces OUT only once complete; on any error
OUT is left as it was. Every value that reaches a Dockerfile, a shell script or YAML is either
validated against a strict grammar (names, image references, tags) or quoted for its syntax.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cortex_serve import model_fetch  # the runtime's fetch code, shared
from cortex_serve.model_cache import DEFAULT_CACHE_DIR as MODEL_CACHE_DIR

from . import (
    __version__,
    container_compose,
    container_k8s,
    images,
    jobs,
    k8s,
    runtime_files,
    runtime_lock,
    splitters,
)
from .compose import (
    FIRST_HOST_PORT,
    HEALTHCHECK,
    HEALTHCHECK_START_PERIOD,
    JOB_FOLDER,
    compose_file,
)
from .errors import Problem, UserError, api_problem, option_problem, unknown_api_message
from .preinstalled import check_imports, import_notes
from .project_files import RENDER_MARKER_FILE, ProjectEntry, ProjectFiles, collect_project_files
from .schema import TAG, is_api_name, is_image_ref
from .spec import (
    SERVER_PORT,
    ApiSpec,
    ContainerApiSpec,
    Project,
    SplitterSpec,
)
from .templating import printable, render_template

# Where things live in the image (the runtime's command line is fixed by cortex_serve).
CORTEX_DIR = "/opt/cortex"
RUNTIME_DIR = f"{CORTEX_DIR}/runtime"
PROJECT_DIR = "/mnt/project"
MODEL_DIR = images.MODEL_DIR
USER_DIR = "/mnt/user"


MARKER_FILE = RENDER_MARKER_FILE  # tells a later render that OUT is its own to replace
MARKER_TEXT = "This folder is rendered by cortex-build; `cortex-build render` replaces it.\n"
# The marker's line naming the project rendered here: its folder's name, as the images' label
# dev.cortex-build.project has it (a full path would make two copies of a project render apart).
MARKER_PROJECT = "project: "


@dataclass(frozen=True)
class RenderedApi:
    """An image to build: an API's, or a traffic splitter's (`splitter`; splitters.py)."""

    name: str
    context: Path  # OUT/<api>: `docker build` this folder
    image: str  # <api>:<tag> or <registry>/<api>:<tag>
    base_image: str
    tf_serving_image: str | None
    host_ports: tuple[int, ...]  # published in docker-compose.yaml
    # one line each: pre-installed packages added, imports that nothing installs
    notes: tuple[str, ...] = ()
    splitter: bool = False


@dataclass(frozen=True)
class RenderedContainerApi:
    """An API given as containers (Cortex v0.36+): its images are the user's, nothing is built."""

    name: str
    kind: str
    images: tuple[str, ...]
    host_ports: tuple[int, ...]  # published in docker-compose.yaml (none for a TaskAPI)
    notes: tuple[str, ...] = ()
    # a BatchAPI's batch worker (cortex_serve.dequeuer), the one image cortex-build builds for it
    worker: RenderedApi | None = None


@dataclass(frozen=True)
class RenderResult:
    out: Path
    apis: tuple[RenderedApi, ...]
    compose_file: Path
    k8s_dir: Path
    # one line each, about the render as a whole (the CLI prints them on stderr)
    notes: tuple[str, ...] = ()
    container_apis: tuple[RenderedContainerApi, ...] = ()

    def api(self, name: str) -> RenderedApi:
        return next(api for api in self.apis if api.name == name)


def render_project(
    project: Project,
    out: Path,
    api_names: list[str] | None = None,
    base_image: str | None = None,
    registry: str | None = None,
    tag: str = "latest",
    autoscaler: str = "hpa",
    tf_serving_image: str | None = None,
    models_at_start: bool = False,
    preinstalled: bool = True,
) -> RenderResult:
    """Renders OUT for the selected APIs (all by default); UserError on bad input, OUT untouched.

    With `preinstalled`, an image also installs the packages Cortex pre-installed that the
    project imports without listing them (preinstalled.py).

    `tf_serving_image` (`--tf-serving-image`) replaces every tensorflow API's TF Serving sidecar
    image, `predictor.tensorflow_serving_image` included, in compose and Kubernetes alike.
    """
    out = Path(out).absolute()
    if out.is_symlink():
        # render into the link's target: replacing OUT whole would replace the link by a folder
        out = out.resolve()
    chosen_splitters, api_names = splitters.select(project, api_names)
    apis, pods = _select(project, api_names or None)
    _check_options(project, apis, base_image, registry, tag, autoscaler, tf_serving_image)
    _check_container_services(project, apis, pods, chosen_splitters)
    try:
        _check_out(project, out)
    except OSError as err:
        raise UserError(_os_problem(err, "cannot read", out)) from None
    if tf_serving_image:
        # As if the config had set it: every renderer (compose, k8s, api.json) reads it there.
        apis = [_with_tf_serving_image(api, tf_serving_image) for api in apis]

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.rendering-", dir=out.parent))
    except OSError as err:
        raise UserError(_os_problem(err, "cannot create", out.parent)) from None
    try:
        files = collect_project_files(project.root, project.config_file, exclude=[out, staging])
        rendered, rendered_pods = _render_into(
            staging,
            out,
            project,
            files,
            apis,
            base_image,
            registry,
            tag,
            models_at_start,
            preinstalled,
            pods,
            chosen_splitters,
        )
        workers = [p.worker for p in rendered_pods if p.worker is not None]
        _render_k8s(
            staging, project, apis, [*rendered, *workers], autoscaler, pods, chosen_splitters
        )
        _write_text(
            staging / MARKER_FILE, f"{MARKER_TEXT}{MARKER_PROJECT}{_project_name(project)}\n"
        )
        _normalize_folder_modes(staging)
        _replace(out, staging)
    except OSError as err:
        # Disk full, permissions, a file that vanished: a problem to report, not a traceback;
        # OUT is as it was (_replace puts an earlier OUT back) and the staging folder goes.
        shutil.rmtree(staging, ignore_errors=True)
        raise UserError(_os_problem(err, "cannot write", out, staging)) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    built = rendered + tuple(p.worker for p in rendered_pods if p.worker is not None)
    return RenderResult(
        out=out,
        apis=built,
        compose_file=out / "docker-compose.yaml",
        k8s_dir=out / "k8s",
        notes=_registry_notes(built) if registry is None and built else (),
        container_apis=rendered_pods,
    )


def given_images_line(images: Sequence[str], kind: str = "RealtimeAPI") -> str:
    """What build and render say of an API given as containers (Cortex v0.36+)."""
    if kind == "BatchAPI":
        return f"images are given: {', '.join(images)}; only the batch worker's is built"
    return f"images are given: {', '.join(images)}; nothing to build"


def _registry_notes(rendered: Sequence[RenderedApi]) -> tuple[str, ...]:
    """Without --registry the manifests name bare `<api>:<tag>` images, which a cluster's nodes
    look for on Docker Hub: say so once the render is done."""
    images = ", ".join(api.image for api in rendered)
    return (
        f"warning: k8s/ names the images {images} without a registry, so a cluster would pull "
        "them from Docker Hub; render and build with --registry REGISTRY (then push them there) "
        "before `kubectl apply -k`",
    )


# ---------------------------------------------------------------------------------------------
# Checks: nothing user-controlled reaches a file without passing one of these


def image_refs(
    project: Project, api_names: list[str] | None, registry: str | None, tag: str
) -> list[str]:
    """The images `build` would name for the selected APIs and traffic splitters, with the same
    checks of the names, registry and tag; nothing is written (for `push`)."""
    chosen_splitters, api_names = splitters.select(project, api_names)
    apis = _select_apis(project, api_names or None)
    _check_options(project, apis, None, registry, tag, "hpa")
    names = [api.name for api in apis] + [s.name for s in chosen_splitters]
    return [images.image_ref(name, registry, tag) for name in names]


def _select(
    project: Project, api_names: list[str] | None
) -> tuple[list[ApiSpec], list[ContainerApiSpec]]:
    """The APIs to render (--api), of predictor code and given as containers."""
    if not api_names:
        return list(project.apis), list(project.container_apis)
    pods = [api for api in project.container_apis if api.name in api_names]
    names = {api.name for api in pods}
    return _select_apis(project, [n for n in api_names if n not in names], pods), pods


def _select_apis(
    project: Project, api_names: list[str] | None, pods: Sequence[ContainerApiSpec] = ()
) -> list[ApiSpec]:
    if not api_names:
        return [] if pods else list(project.apis)
    known = [api.name for api in project.apis]
    unknown = [name for name in api_names if name not in known]
    if unknown:
        raise UserError(
            [option_problem("--api", unknown_api_message(project, name)) for name in unknown]
        )
    wanted = set(api_names)
    return [api for api in project.apis if api.name in wanted]


def _check_options(
    project: Project,
    apis: Sequence[ApiSpec],
    base_image: str | None,
    registry: str | None,
    tag: str,
    autoscaler: str,
    tf_serving_image: str | None = None,
) -> None:
    problems: list[Problem] = []
    if base_image is not None and not is_image_ref(base_image):
        problems.append(
            option_problem(
                "--base-image",
                f'must be an image reference like "python:3.11-slim" (got {_quote(base_image)})',
            )
        )
    if tf_serving_image is not None and not is_image_ref(tf_serving_image):
        problems.append(
            option_problem(
                "--tf-serving-image",
                'must be an image reference like "tensorflow/serving:2.16.1" '
                f"(got {_quote(tf_serving_image)})",
            )
        )
    if not TAG.fullmatch(tag):
        problems.append(
            option_problem(
                "--tag",
                "must be letters, digits, '_', '.' or '-', not starting with '.' or '-', at most "
                f"128 characters (got {_quote(tag)})",
            )
        )
    elif registry is not None and not is_image_ref(images.image_ref("api", registry, tag)):
        problems.append(
            option_problem(
                "--registry",
                'must be a registry and optional path like "registry.example.com:5000/team", '
                "the path in lower case as Docker requires "
                f"(got {_quote(registry)})",
            )
        )
    if autoscaler not in k8s.AUTOSCALERS:
        problems.append(
            option_problem("--autoscaler", f'must be "hpa" or "keda" (got {_quote(autoscaler)})')
        )
    services: dict[str, str] = {}
    for api in apis:
        # The config reader enforces these already; the templates rely on them, so check again.
        if not is_api_name(api.name):
            problems.append(api_problem(project, api, "name", "must be a DNS-1035 label"))
            continue
        for field, image in (
            ("predictor.image", api.predictor.image),
            ("predictor.tensorflow_serving_image", api.predictor.tensorflow_serving_image),
        ):
            if image is not None and not is_image_ref(image):
                problems.append(api_problem(project, api, field, "must be an image reference"))
        for service in _service_names(api):
            if service in services:
                problems.append(
                    api_problem(
                        project,
                        api,
                        "name",
                        f'its compose service "{service}" collides with one of the API '
                        f'"{services[service]}"; rename one of them',
                    )
                )
            services[service] = api.name
    if problems:
        raise UserError(problems)


def _check_container_services(
    project: Project,
    apis: Sequence[ApiSpec],
    pods: Sequence[ContainerApiSpec],
    chosen_splitters: Sequence[SplitterSpec] = (),
) -> None:
    """Compose service names of container APIs (`<api>-<container>`), of TF Serving sidecars
    (`<api>-serving`, `<api>-models`) and of traffic splitters must not collide."""
    problems: list[Problem] = []
    taken = {service: api.name for api in apis for service in _service_names(api)}
    for pod in pods:
        for container, service in container_compose.service_names(pod).items():
            if service in taken:
                problems.append(
                    Problem(
                        project.config_file.name,
                        pod.line or None,
                        pod.name,
                        "pod.containers",
                        f'the compose service "{service}" of container {container} collides '
                        f'with one of the API "{taken[service]}"; rename one of them',
                    )
                )
            taken[service] = pod.name
    for splitter in chosen_splitters:  # its service is named after it
        if splitter.name in taken:
            problems.append(
                Problem(
                    project.config_file.name,
                    splitter.line or None,
                    splitter.name,
                    "name",
                    f'the compose service "{splitter.name}" of this traffic splitter collides '
                    f'with one of the API "{taken[splitter.name]}"; rename one of them',
                )
            )
    if problems:
        raise UserError(problems)


def _check_out(project: Project, out: Path) -> None:
    """OUT is replaced whole, so it must be ours: absent, empty, or rendered before."""
    root = project.root.resolve()
    resolved = out.resolve()
    if root == resolved or root.is_relative_to(resolved):
        raise UserError(
            option_problem(
                "-o", f"{out} holds the project; choose an output folder inside or beside it"
            )
        )
    if resolved.exists():
        if not resolved.is_dir():
            raise UserError(option_problem("-o", f"{out} exists and is not a folder"))
        if any(resolved.iterdir()) and not (resolved / MARKER_FILE).is_file():
            raise UserError(
                option_problem(
                    "-o",
                    f"{out} is not empty and was not rendered by cortex-build; rendering replaces "
                    "the whole folder, so choose a new or empty one",
                )
            )
        other = _rendered_project(resolved / MARKER_FILE)
        if other is not None and other != _project_name(project):
            raise UserError(
                option_problem(
                    "-o",
                    f"{out} holds the render of another project ({other}); choose another "
                    "output folder with -o, or remove that one first",
                )
            )


def _project_name(project: Project) -> str:
    return printable(project.root.resolve().name)


def _rendered_project(marker: Path) -> str | None:
    """The project an earlier render into this folder was of (None: no marker, or one written
    before the marker named it)."""
    try:
        lines = marker.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith(MARKER_PROJECT):
            return line[len(MARKER_PROJECT) :]
    return None


def _with_tf_serving_image(api: ApiSpec, image: str) -> ApiSpec:
    if api.predictor.type != "tensorflow":
        return api
    predictor = dataclasses.replace(api.predictor, tensorflow_serving_image=image)
    return dataclasses.replace(api, predictor=predictor)


def _service_names(api: ApiSpec) -> list[str]:
    names = [api.name]
    if api.predictor.type == "tensorflow":
        names += [f"{api.name}-serving", f"{api.name}-models"]
    return names


def _os_problem(err: OSError, doing: str, out: Path, staging: Path | None = None) -> Problem:
    """An OSError as one line naming the path: `-o: cannot create /proc/foo: No such file or
    directory` on the output side, `<file>: cannot be read: ...` for a file the render reads."""
    reason = err.strerror or str(err)
    names = [Path(name) for name in (err.filename, err.filename2) if isinstance(name, str)]
    for path in names:
        if staging is not None and path.is_relative_to(staging):
            # the staging folder means nothing to the user: the file as it would be in OUT
            return option_problem("-o", f"{doing} {out / path.relative_to(staging)}: {reason}")
        if path.parent == out.parent and path.name.startswith(f".{out.name}."):
            return option_problem("-o", f"{doing} {out.parent}: {reason}")  # a temporary folder
        if path.is_relative_to(out) or out.is_relative_to(path):  # OUT, in it, or above it
            return option_problem("-o", f"{doing} {path}: {reason}")
    if names and staging is not None:
        # neither OUT nor beside it: a file the render reads (the project's, a model's)
        return Problem(str(names[0]), None, None, None, f"cannot be read: {reason}")
    return option_problem("-o", f"{doing} {names[0] if names else out}: {reason}")


def _quote(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


# ---------------------------------------------------------------------------------------------
# Rendering


def _render_into(
    staging: Path,
    out: Path,
    project: Project,
    files: ProjectFiles,
    apis: Sequence[ApiSpec],
    base_image: str | None,
    registry: str | None,
    tag: str,
    models_at_start: bool = False,
    preinstalled: bool = True,
    pods: Sequence[ContainerApiSpec] = (),
    chosen_splitters: Sequence[SplitterSpec] = (),
) -> tuple[tuple[RenderedApi, ...], tuple[RenderedContainerApi, ...]]:
    rendered: list[RenderedApi] = []
    rendered_pods: list[RenderedContainerApi] = []
    next_port = FIRST_HOST_PORT
    for api in apis:
        replicas = 0 if api.is_job else api.autoscaling.starting_replicas
        ports = tuple(range(next_port, next_port + replicas))
        next_port += replicas
        imports = check_imports(api, files)
        added = imports.requirements if preinstalled else ()
        rendered.append(
            RenderedApi(
                name=api.name,
                context=out / api.name,
                image=images.image_ref(api.name, registry, tag),
                base_image=images.base_image_for(api, base_image),
                tf_serving_image=images.tf_serving_image_for(api),
                host_ports=ports,
                notes=import_notes(imports, preinstalled),
            )
        )
        _render_context(
            staging / api.name, project, files, api, rendered[-1], models_at_start, added
        )
    pod_services = []
    for pod in pods:
        count = container_compose.replicas(pod) if pod.kind == "RealtimeAPI" else 0
        ports = tuple(range(next_port, next_port + count))
        next_port += count
        worker = None
        if pod.kind == "BatchAPI":
            worker = RenderedApi(
                name=pod.name,
                context=out / pod.name,
                image=images.image_ref(pod.name, registry, tag),
                base_image=base_image or images.PYTHON_CPU_BASE,
                tf_serving_image=None,
                host_ports=(),
            )
            _render_worker_context(staging / pod.name, project, worker)
        services = container_compose.container_services(
            project, pod, ports, worker.image if worker else None
        )
        pod_services.append(services)
        rendered_pods.append(
            RenderedContainerApi(
                name=pod.name,
                kind=pod.kind,
                images=pod.images(),
                host_ports=ports,
                notes=services.notes + tuple(container_k8s.autoscaling_notes(pod)),
                worker=worker,
            )
        )
    splitter_targets = []
    for splitter in chosen_splitters:
        target = RenderedApi(
            name=splitter.name,
            context=out / splitter.name,
            image=images.image_ref(splitter.name, registry, tag),
            base_image=base_image or images.PYTHON_CPU_BASE,
            tf_serving_image=None,
            host_ports=(next_port,),
            splitter=True,
        )
        next_port += 1
        _render_splitter_context(staging / splitter.name, project, splitter, target)
        splitter_targets.append(target)
    compose = compose_file(
        project,
        files,
        apis,
        rendered,
        out,
        rendered_pods,
        pod_services,
        pods,
        list(zip(chosen_splitters, splitter_targets, strict=True)),
    )
    _write_text(staging / "docker-compose.yaml", compose)
    return tuple(rendered + splitter_targets), tuple(rendered_pods)


def _render_splitter_context(
    context: Path, project: Project, splitter: SplitterSpec, target: RenderedApi
) -> None:
    """OUT/<splitter>: Dockerfile (templates/Dockerfile.splitter.jinja), cortex/splitter.json,
    the runtime's requirements and lock, runtime/."""
    context.mkdir(mode=0o755)
    spec = splitters.spec_json(splitter, splitters.all_apis(project))
    values = {
        "api_name": splitter.name,
        "config_name": project.config_file.name,
        "image": target.image,
        "base_image": target.base_image,
        "description": f"Cortex traffic splitter {splitter.name}, built by cortex-build",
        "version": __version__,
        "project_name": _project_name(project),
        "spec_label": json.dumps(json.loads(spec), sort_keys=True, separators=(",", ":")),
        "framework_packages": (),
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
    _write_text(context / "Dockerfile", render_template("Dockerfile.splitter.jinja", values))
    _write_text(context / "cortex" / splitters.SPEC_FILE, spec)
    requirements = runtime_files.REQUIREMENTS_FILE.read_text(encoding="utf-8")
    _write_text(context / "cortex" / "runtime-requirements.txt", requirements)
    _write_text(
        context / "cortex" / "runtime-requirements.lock",
        runtime_lock.load_lock().render(requirements.splitlines()),
    )
    for package, folder in runtime_files.package_dirs().items():
        _copy_tree(folder, context / "runtime" / package)


def _render_worker_context(context: Path, project: Project, worker: RenderedApi) -> None:
    """OUT/<api>/ of a container BatchAPI: the batch worker's image (templates/
    dequeuer.Dockerfile.jinja), the runtime's cortex_serve package on a python3 image."""
    context.mkdir(mode=0o755)
    _write_text(
        context / "Dockerfile",
        render_template(
            "dequeuer.Dockerfile.jinja",
            {
                "api_name": worker.name,
                "config_name": project.config_file.name,
                "image": worker.image,
                "base_image": worker.base_image,
                "runtime_dir": RUNTIME_DIR,
                "project_name": _project_name(project),
                "uid": images.USER_ID,
            },
        ),
    )
    _copy_tree(runtime_files.package_dirs()["cortex_serve"], context / "runtime" / "cortex_serve")


def _render_context(
    context: Path,
    project: Project,
    files: ProjectFiles,
    api: ApiSpec,
    target: RenderedApi,
    models_at_start: bool = False,
    preinstalled: tuple[str, ...] = (),
) -> None:
    context.mkdir(mode=0o755)
    cortex = context / "cortex"
    models = _image_models(project, api, context / "models", models_at_start)
    framework = images.framework_packages(api)
    requirements = files.shipped_file(api.predictor.dependencies.pip)
    dependencies = files.shipped_file(api.predictor.dependencies.shell)
    values = {
        "api_name": api.name,
        "config_name": project.config_file.name,
        "image": target.image,
        "base_image": target.base_image,
        "predictor_type": api.predictor.type,
        "generation": api.generation,
        "description": f"Cortex {api.predictor.type} API {api.name}, built by cortex-build",
        "version": __version__,
        "project_name": _project_name(project),  # "." names its folder
        # api.json in one line (ASCII, control characters escaped by JSON): a label value
        "spec_label": json.dumps(models.spec.to_dict(), sort_keys=True, separators=(",", ":")),
        "framework_packages": framework,
        "has_dependencies": dependencies is not None,
        "has_requirements": requirements is not None,
        "preinstalled": preinstalled,
        "cortex_release": api.cortex.assumed,
        "has_models": bool(models.copies) or models.fetched,
        "cortex_dir": CORTEX_DIR,
        "runtime_dir": RUNTIME_DIR,
        "project_dir": PROJECT_DIR,
        "model_dir": MODEL_DIR,
        "user_dir": USER_DIR,
        "model_cache_dir": MODEL_CACHE_DIR,
        "uid": images.USER_ID,
        "port": SERVER_PORT,
        "healthcheck": HEALTHCHECK,
        "start_period": HEALTHCHECK_START_PERIOD,
        "kind": api.kind,
        "is_job": api.is_job,
        "job_spec": f"{jobs.JOB_SPEC_DIR}/{jobs.JOB_FILE}",
        "lock_python": runtime_lock.load_lock().python,
    }
    _write_text(context / "Dockerfile", render_template("Dockerfile.jinja", values))
    _write_text(cortex / "api.json", models.spec.to_json())
    _write_text(cortex / "entrypoint.sh", render_template("entrypoint.sh.jinja", values), 0o755)
    if api.is_job:  # a job to start from, which compose mounts at /cortex/spec (jobs.py)
        _write_text(context / JOB_FOLDER / jobs.JOB_FILE, jobs.job_text(jobs.sample_job(api)))
    runtime_requirements = runtime_files.REQUIREMENTS_FILE.read_text(encoding="utf-8")
    if framework:
        runtime_requirements += f"# the {api.predictor.type} client\n" + "".join(
            f"{requirement}\n" for requirement in framework
        )
    if models.packages:
        runtime_requirements += (
            "# models fetched at start (s3://: boto3, http(s)://: urllib3)\n"
        ) + "".join(f"{requirement}\n" for requirement in models.packages)
    _write_text(cortex / "runtime-requirements.txt", runtime_requirements)
    # The same packages at the exact versions of the runtime's lock (runtime_lock.py), which the
    # image installs when its Python is the lock's; the ranges above stay the constraints.
    _write_text(
        cortex / "runtime-requirements.lock",
        runtime_lock.load_lock().render(runtime_requirements.splitlines()),
    )
    if requirements is not None:
        _write_text(
            cortex / "install-requirements.sh",
            render_template("install-requirements.sh.jinja", values),
            0o755,
        )
        _copy_file(requirements, context / "deps" / "requirements.txt")
    if dependencies is not None:
        _copy_file(dependencies, context / "deps" / "dependencies.sh")
    if preinstalled:
        listed = "".join(f"{requirement}\n" for requirement in preinstalled)
        _write_text(
            context / "deps" / "cortex-preinstalled.txt",
            f"# Packages Cortex {api.cortex.assumed} pre-installed that the project imports "
            "without listing them\n" + listed,
        )
    for package, folder in runtime_files.package_dirs().items():
        _copy_tree(folder, context / "runtime" / package)
    for source, name in models.copies:
        _copy_model(source, context / "models" / name if name else context / "models")
    (context / "project").mkdir(mode=0o755)
    for entry in _project_entries(files, models.moved):
        _place_entry(entry, context / "project")


@dataclass(frozen=True)
class _ImageModels:
    spec: ApiSpec  # model paths rewritten to their place under MODEL_DIR
    copies: tuple[tuple[Path, str], ...]  # (source, name under models/; "" for models.dir)
    moved: dict[str, str]  # project-relative model path -> its path in the image
    fetched: bool = False  # remote models were downloaded into models/ already
    packages: tuple[str, ...] = ()  # pip requirements of the models the runtime fetches


# boto3 1.28 is the first to honour AWS_ENDPOINT_URL (an S3-compatible server instead of AWS).
S3_PACKAGES = ("boto3>=1.28",)
# urllib3 retries http(s) downloads with backoff (model_fetch.py); 1.26 has Retry(allowed_methods)
HTTP_PACKAGES = ("urllib3>=1.26",)


def _image_models(
    project: Project, api: ApiSpec, models_dir: Path, models_at_start: bool = False
) -> _ImageModels:
    """Where the API's models go in the image.

    A model folder lands at MODEL_DIR/<name>, a model file at MODEL_DIR/<name>/<file name>,
    `models.dir` at MODEL_DIR itself. Local models are copied later (`copies`); remote ones
    (s3://, http(s)://) are fetched now into `models_dir` with model_fetch, the runtime's own
    code, so they are laid out exactly as local ones. With `models_at_start` remote paths stay
    as written, for the runtime to fetch when it starts (boto3 then goes into the image for
    s3://); TensorFlow APIs cannot, as TF Serving reads its models from the image.
    """
    models = api.predictor.models
    if models is None:
        return _ImageModels(api, (), {})
    root = project.root.resolve()
    copies: list[tuple[Path, str]] = []
    moved: dict[str, str] = {}
    remote: list[str] = []

    def problem(message: str) -> UserError:
        return UserError(api_problem(project, api, "predictor.models", message))

    def place(written: str, name: str) -> str:
        in_image = f"{MODEL_DIR}/{name}" if name else MODEL_DIR
        if model_fetch.is_remote(written):
            remote.append(written)
            if models_at_start:
                if api.predictor.type == "tensorflow":
                    raise problem(
                        "--models-at-start is not available for type: tensorflow (the TF "
                        "Serving sidecar reads the models from the image); leave it out to "
                        f"fetch {_quote(written)} while rendering"
                    )
                return written
            target = models_dir / name if name else models_dir
            try:
                local = model_fetch.fetch(written, target)
            except model_fetch.FetchError as error:
                raise problem(f"fetching the model failed: {error}") from None
            return in_image if local == target else f"{in_image}/{local.name}"
        source = (root / written).resolve()  # an absolute path stays as it is
        copies.append((source, name))
        if source.is_file():
            in_image += f"/{source.name}"
        if source.is_relative_to(root) and source != root:
            moved[source.relative_to(root).as_posix()] = in_image
        return in_image

    paths = tuple(dataclasses.replace(ref, path=place(ref.path, ref.name)) for ref in models.paths)
    model_dir = place(models.dir, "") if models.dir is not None else None
    predictor = dataclasses.replace(
        api.predictor, models=dataclasses.replace(models, paths=paths, dir=model_dir)
    )
    fetched = bool(remote) and not models_at_start
    s3_at_start = models_at_start and any(path.startswith("s3://") for path in remote)
    http_at_start = models_at_start and any(path.startswith("http") for path in remote)
    return _ImageModels(
        dataclasses.replace(api, predictor=predictor),
        tuple(copies),
        moved,
        fetched=fetched,
        packages=(S3_PACKAGES if s3_at_start else ()) + (HTTP_PACKAGES if http_at_start else ()),
    )


def _project_entries(files: ProjectFiles, moved: dict[str, str]) -> list[ProjectEntry]:
    """The project files, with each local model inside the project replaced by a symlink to its
    copy under MODEL_DIR: code that opens the model by its project path still finds it, and its
    bytes live only in the models layer, which a code edit does not rebuild."""
    entries = [
        entry
        for entry in files.entries
        if not any(entry.path == p or entry.path.startswith(p + "/") for p in moved)
    ]
    entries += [ProjectEntry(path, None, target) for path, target in moved.items()]
    return sorted(entries, key=lambda e: e.path)


def _render_k8s(
    staging: Path,
    project: Project,
    apis: Sequence[ApiSpec],
    rendered: Sequence[RenderedApi],
    autoscaler: str,
    pods: Sequence[ContainerApiSpec] = (),
    chosen_splitters: Sequence[SplitterSpec] = (),
) -> None:
    """OUT/k8s: the manifests of cortex_build.k8s."""
    manifests = k8s.render_k8s(
        project,
        apis,
        {r.name: r.image for r in rendered},
        autoscaler,
        container_apis=pods,
        splitters=chosen_splitters,
    )
    for relative, content in sorted(manifests.items()):
        _write_text(staging / "k8s" / relative, content)


# ---------------------------------------------------------------------------------------------
# Templates and files


def _write_text(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)


def _copy_file(source: Path, target: Path) -> None:
    """Bytes and a normalized mode (0755 if executable, else 0644): readable by the API's user
    whatever the mode in the project, and the same on every machine."""
    target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    target.chmod(0o755 if os.stat(source).st_mode & 0o111 else 0o644)


def _copy_tree(source: Path, target: Path, skip_hidden: bool = False) -> None:
    for folder, dirnames, filenames in os.walk(source):
        dirnames[:] = sorted(
            d for d in dirnames if d != "__pycache__" and not (skip_hidden and d.startswith("."))
        )
        here = Path(folder)
        for name in sorted(filenames):
            if name.endswith((".pyc", ".pyo")) or (skip_hidden and name.startswith(".")):
                continue
            _copy_file(here / name, target / here.relative_to(source) / name)
    target.mkdir(mode=0o755, parents=True, exist_ok=True)


def _copy_model(source: Path, target: Path) -> None:
    if source.is_dir():
        _copy_tree(source, target, skip_hidden=True)
    else:
        _copy_file(source, target / source.name)


def _place_entry(entry: ProjectEntry, project_dir: Path) -> None:
    target = project_dir / entry.path
    if entry.link_target is not None:
        target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        os.symlink(entry.link_target, target)
    else:
        assert entry.source is not None
        _copy_file(entry.source, target)


def _normalize_folder_modes(top: Path) -> None:
    """0755 on every folder (mkdtemp makes 0700; the umask varies between machines)."""
    top.chmod(0o755)
    for folder, dirnames, _ in os.walk(top):
        for name in dirnames:
            path = Path(folder) / name
            if not path.is_symlink():
                path.chmod(0o755)


def _replace(out: Path, staging: Path) -> None:
    """Moves the finished staging folder to OUT; an earlier OUT goes only once that succeeded."""
    if not out.exists():
        staging.rename(out)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{out.name}.previous-", dir=out.parent))
    retired.rmdir()
    out.rename(retired)
    try:
        staging.rename(out)
    except BaseException:
        retired.rename(out)
        raise
    shutil.rmtree(retired, ignore_errors=True)


__all__ = ["RenderResult", "RenderedApi", "render_project"]

"""`cortex-build render`: per API a Docker build context, plus docker-compose.yaml and k8s/.

render_project is the whole render, in steps each owned by a module of its own:

    render_options.py   the options (RenderOptions) and the --api selection, checked first
    out_folder.py       OUT: refused when not ours, rendered beside it, replaced atomically
    contexts.py         OUT/<api>/, what `docker build OUT/<api>` needs, per kind of image
    image_models.py     the models in an image: copied, fetched now, or left to the runtime
    compose.py, k8s.py  OUT/docker-compose.yaml and OUT/k8s/

Rendering is deterministic (same input, same bytes and file modes) and atomic: on any error OUT
is left as it was. Every value that reaches a Dockerfile, a shell script or YAML is either
validated against a strict grammar (names, image references, tags) or quoted for its syntax.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from . import container_compose, container_k8s, images, k8s, out_folder
from .compose import FIRST_HOST_PORT, ComposeInputs, compose_file
from .contexts import render_context, render_splitter_context, render_worker_context
from .preinstalled import check_imports, import_notes
from .project_files import ProjectFiles, collect_project_files
from .render_options import (
    DEFAULT_OPTIONS,
    RenderOptions,
    Selection,
    check_container_services,
    check_options,
    select,
)
from .spec import ApiSpec, Project
from .writing import write_text


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
    project: Project, out: Path, options: RenderOptions = DEFAULT_OPTIONS
) -> RenderResult:
    """Renders OUT for the selected APIs (all by default); UserError on bad input, OUT untouched.

    `options.tf_serving_image` (`--tf-serving-image`) replaces every tensorflow API's TF Serving
    sidecar image, `predictor.tensorflow_serving_image` included, in compose and Kubernetes alike.
    """
    out = Path(out).absolute()
    if out.is_symlink():
        # render into the link's target: replacing OUT whole would replace the link by a folder
        out = out.resolve()
    selection = select(project, options.api_names)
    check_options(project, selection.apis, options)
    check_container_services(project, selection)
    out_folder.check_out(project, out)
    if options.tf_serving_image:
        # As if the config had set it: every renderer (compose, k8s, api.json) reads it there.
        apis = tuple(
            _with_tf_serving_image(api, options.tf_serving_image) for api in selection.apis
        )
        selection = dataclasses.replace(selection, apis=apis)
    with out_folder.replacing(out, project) as staging:
        files = collect_project_files(project.root, project.config_file, exclude=[out, staging])
        rendered, rendered_pods = _render_into(staging, out, project, files, selection, options)
        workers = [p.worker for p in rendered_pods if p.worker is not None]
        manifests = k8s.render_k8s(
            project,
            selection.apis,
            {r.name: r.image for r in [*rendered, *workers]},
            options.autoscaler,
            container_apis=selection.container_apis,
            splitters=selection.splitters,
        )
        for relative, content in sorted(manifests.items()):
            write_text(staging / "k8s" / relative, content)
    built = rendered + tuple(workers)
    return RenderResult(
        out=out,
        apis=built,
        compose_file=out / "docker-compose.yaml",
        k8s_dir=out / "k8s",
        notes=_registry_notes(built) if options.registry is None and built else (),
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


def _with_tf_serving_image(api: ApiSpec, image: str) -> ApiSpec:
    if api.predictor.type != "tensorflow":
        return api
    predictor = dataclasses.replace(api.predictor, tensorflow_serving_image=image)
    return dataclasses.replace(api, predictor=predictor)


def _render_into(
    staging: Path,
    out: Path,
    project: Project,
    files: ProjectFiles,
    selection: Selection,
    options: RenderOptions,
) -> tuple[tuple[RenderedApi, ...], tuple[RenderedContainerApi, ...]]:
    """The build contexts and docker-compose.yaml into `staging`; each API, container API and
    splitter takes its host ports after the ones before it."""
    rendered: list[RenderedApi] = []
    rendered_pods: list[RenderedContainerApi] = []
    next_port = FIRST_HOST_PORT
    for api in selection.apis:
        replicas = 0 if api.is_job else api.autoscaling.starting_replicas
        ports = tuple(range(next_port, next_port + replicas))
        next_port += replicas
        imports = check_imports(api, files)
        rendered.append(
            RenderedApi(
                name=api.name,
                context=out / api.name,
                image=images.image_ref(api.name, options.registry, options.tag),
                base_image=images.base_image_for(api, options.base_image),
                tf_serving_image=images.tf_serving_image_for(api),
                host_ports=ports,
                notes=import_notes(imports, options.preinstalled),
            )
        )
        render_context(
            staging / api.name,
            project,
            files,
            api,
            rendered[-1],
            models_at_start=options.models_at_start,
            preinstalled=imports.requirements if options.preinstalled else (),
        )
    pod_services = []
    for pod in selection.container_apis:
        count = container_compose.replicas(pod) if pod.kind == "RealtimeAPI" else 0
        ports = tuple(range(next_port, next_port + count))
        next_port += count
        worker = None
        if pod.kind == "BatchAPI":
            worker = _runtime_image(pod.name, out, options)
            render_worker_context(staging / pod.name, project, worker)
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
    for splitter in selection.splitters:
        target = _runtime_image(splitter.name, out, options, host_ports=(next_port,), splitter=True)
        next_port += 1
        render_splitter_context(staging / splitter.name, project, splitter, target)
        splitter_targets.append(target)
    compose = compose_file(
        project,
        files,
        out,
        ComposeInputs(
            apis=tuple(zip(selection.apis, rendered, strict=True)),
            pods=tuple(zip(selection.container_apis, rendered_pods, pod_services, strict=True)),
            splitters=tuple(zip(selection.splitters, splitter_targets, strict=True)),
        ),
    )
    write_text(staging / "docker-compose.yaml", compose)
    return tuple(rendered + splitter_targets), tuple(rendered_pods)


def _runtime_image(
    name: str,
    out: Path,
    options: RenderOptions,
    host_ports: tuple[int, ...] = (),
    splitter: bool = False,
) -> RenderedApi:
    """The image of a part that runs the runtime alone, no predictor (a traffic splitter, a
    container BatchAPI's batch worker): on Python's image unless --base-image, no sidecar."""
    return RenderedApi(
        name=name,
        context=out / name,
        image=images.image_ref(name, options.registry, options.tag),
        base_image=options.base_image or images.PYTHON_CPU_BASE,
        tf_serving_image=None,
        host_ports=host_ports,
        splitter=splitter,
    )


__all__ = ["RenderOptions", "RenderResult", "RenderedApi", "render_project"]

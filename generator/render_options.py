"""A render's options (RenderOptions) and selection (--api), checked before anything is written.

Nothing user-controlled reaches a file without passing one of these checks: the options by
Docker's reference rules, the selected APIs' names and images again (the templates rely on them),
and the compose service names every API, container and traffic splitter takes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from . import container_compose, images, splitters
from .errors import Problem, UserError, api_problem, option_problem, unknown_api_message
from .k8s_autoscaling import autoscaler_problem
from .schema import TAG, is_api_name, is_image_ref
from .spec import ApiSpec, ContainerApiSpec, Project, SplitterSpec
from .templating import quote


@dataclass(frozen=True)
class RenderOptions:
    """What `render` and `build` are told on the command line about the images to write."""

    api_names: tuple[str, ...] = ()  # --api: the APIs and traffic splitters to render; () is all
    base_image: str | None = None  # --base-image: instead of the predictor type's (images.py)
    registry: str | None = None  # images are named <registry>/<api>:<tag>, or <api>:<tag>
    tag: str = "latest"
    autoscaler: str = "hpa"  # what scales the Deployments: spec.AUTOSCALERS
    # replaces every tensorflow API's TF Serving sidecar image, in compose and Kubernetes alike
    tf_serving_image: str | None = None
    models_at_start: bool = False  # remote models are fetched by the runtime, not the render
    # images also install the packages Cortex pre-installed that the project imports without
    # listing them (preinstalled.py)
    preinstalled: bool = True


DEFAULT_OPTIONS = RenderOptions()  # every API, images named <api>:latest


@dataclass(frozen=True)
class Selection:
    """What a render writes: the APIs of predictor code, those given as containers, and the
    traffic splitters, in the config's order."""

    apis: tuple[ApiSpec, ...]
    container_apis: tuple[ContainerApiSpec, ...]
    splitters: tuple[SplitterSpec, ...]


def select(project: Project, api_names: Sequence[str]) -> Selection:
    """The APIs and splitters --api names (all when none), a chosen splitter's APIs with it;
    UserError for a name the config does not have."""
    chosen_splitters, names = splitters.select(project, list(api_names) or None)
    if not names:
        return Selection(project.apis, project.container_apis, tuple(chosen_splitters))
    pods = tuple(api for api in project.container_apis if api.name in names)
    pod_names = {api.name for api in pods}
    apis = _select_apis(project, [n for n in names if n not in pod_names], pods)
    return Selection(tuple(apis), pods, tuple(chosen_splitters))


def image_refs(
    project: Project, api_names: Sequence[str], registry: str | None, tag: str
) -> list[str]:
    """The images `build` would name for the selected APIs and traffic splitters, with the same
    checks of the names, registry and tag; nothing is written (for `push`)."""
    chosen_splitters, names = splitters.select(project, list(api_names) or None)
    apis = _select_apis(project, names or None)
    check_options(project, apis, RenderOptions(registry=registry, tag=tag))
    names = [api.name for api in apis] + [s.name for s in chosen_splitters]
    return [images.image_ref(name, registry, tag) for name in names]


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


def check_options(project: Project, apis: Sequence[ApiSpec], options: RenderOptions) -> None:
    """The image options by Docker's rules, then the APIs' names, images and compose services."""
    problems: list[Problem] = []
    if options.base_image is not None and not is_image_ref(options.base_image):
        problems.append(
            option_problem(
                "--base-image",
                'must be an image reference like "python:3.11-slim" '
                f"(got {quote(options.base_image)})",
            )
        )
    if options.tf_serving_image is not None and not is_image_ref(options.tf_serving_image):
        problems.append(
            option_problem(
                "--tf-serving-image",
                'must be an image reference like "tensorflow/serving:2.16.1" '
                f"(got {quote(options.tf_serving_image)})",
            )
        )
    if not TAG.fullmatch(options.tag):
        problems.append(
            option_problem(
                "--tag",
                "must be letters, digits, '_', '.' or '-', not starting with '.' or '-', at most "
                f"128 characters (got {quote(options.tag)})",
            )
        )
    elif options.registry is not None and not is_image_ref(
        images.image_ref("api", options.registry, options.tag)
    ):
        problems.append(
            option_problem(
                "--registry",
                'must be a registry and optional path like "registry.example.com:5000/team", '
                "the path in lower case as Docker requires "
                f"(got {quote(options.registry)})",
            )
        )
    bad_autoscaler = autoscaler_problem(options.autoscaler)
    if bad_autoscaler is not None:
        problems.append(bad_autoscaler)
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


def check_container_services(project: Project, selection: Selection) -> None:
    """Compose service names of container APIs (`<api>-<container>`), of TF Serving sidecars
    (`<api>-serving`, `<api>-models`) and of traffic splitters must not collide."""
    problems: list[Problem] = []
    taken = {service: api.name for api in selection.apis for service in _service_names(api)}
    for pod in selection.container_apis:
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
    for splitter in selection.splitters:  # its service is named after it
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


def _service_names(api: ApiSpec) -> list[str]:
    names = [api.name]
    if api.predictor.type == "tensorflow":
        names += [f"{api.name}-serving", f"{api.name}-models"]
    return names

"""Where an API's models go in its image: local ones copied, remote ones (s3://, http(s)://)
fetched while rendering, or left to the runtime (--models-at-start)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from cortex_serve import model_fetch  # the runtime's fetch code, shared

from . import images
from .errors import UserError, api_problem
from .project_files import ProjectEntry, ProjectFiles
from .spec import ApiSpec, Project
from .templating import quote

MODEL_DIR = images.MODEL_DIR

# boto3 1.28 is the first to honour AWS_ENDPOINT_URL (an S3-compatible server instead of AWS).
S3_PACKAGES = ("boto3>=1.28",)
# urllib3 retries http(s) downloads with backoff (model_fetch.py); 1.26 has Retry(allowed_methods)
HTTP_PACKAGES = ("urllib3>=1.26",)


@dataclass(frozen=True)
class ImageModels:
    spec: ApiSpec  # model paths rewritten to their place under MODEL_DIR
    copies: tuple[tuple[Path, str], ...]  # (source, name under models/; "" for models.dir)
    moved: dict[str, str]  # project-relative model path -> its path in the image
    fetched: bool = False  # remote models were downloaded into models/ already
    packages: tuple[str, ...] = ()  # pip requirements of the models the runtime fetches


def image_models(
    project: Project, api: ApiSpec, models_dir: Path, models_at_start: bool = False
) -> ImageModels:
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
        return ImageModels(api, (), {})
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
                        f"fetch {quote(written)} while rendering"
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
    return ImageModels(
        dataclasses.replace(api, predictor=predictor),
        tuple(copies),
        moved,
        fetched=fetched,
        packages=(S3_PACKAGES if s3_at_start else ()) + (HTTP_PACKAGES if http_at_start else ()),
    )


def project_entries(files: ProjectFiles, moved: dict[str, str]) -> list[ProjectEntry]:
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

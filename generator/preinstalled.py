"""The packages Cortex pre-installed that a project imports without listing them.

Cortex's serving images came with a documented set of packages per release and predictor type
(data/cortex_preinstalled.json), and projects relied on them: the v0.13 sklearn example lists
only boto3. Installing every one into every image would cost hundreds of MB (torch alone), so an
image gets exactly those that the project's Python files import (imports.py) and that nothing
else provides: not the standard library, the project's own modules, its requirements file, the
runtime, or the predictor type's client.

Cortex's pins (Python 3.6 builds, 2019-2021) do not install on today's Pythons, so an addition is
written `name>=<Cortex's version>`: pip takes the newest release that installs on the image's
Python, never an older one than Cortex had.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from cortex_serve.contract import RUNTIME_MODULES

from . import images, runtime_files
from .imports import STDLIB, ImportSite, local_modules, project_imports
from .project_files import ProjectFiles, requirement_lines
from .spec import ApiSpec

# Distributions whose import name is not their own name (normalized: lower case, "_" for "-").
_IMPORT_NAMES: dict[str, tuple[str, ...]] = {
    "beautifulsoup4": ("bs4",),
    "google-cloud-storage": ("google",),
    "grpcio": ("grpc",),
    "grpcio-reflection": ("grpc_reflection",),
    "grpcio-tools": ("grpc_tools",),
    "opencv-python": ("cv2",),
    "opencv-python-headless": ("cv2",),
    "opencv-contrib-python": ("cv2",),
    "pillow": ("PIL",),
    "protobuf": ("google",),
    "python-dateutil": ("dateutil",),
    "python-dotenv": ("dotenv",),
    "python-json-logger": ("pythonjsonlogger",),
    "python-multipart": ("multipart", "python_multipart"),
    "pyyaml": ("yaml",),
    "scikit-image": ("skimage",),
    "scikit-learn": ("sklearn",),
    "sentry-sdk": ("sentry_sdk",),
    "tensorflow-cpu": ("tensorflow",),
    "tensorflow-gpu": ("tensorflow",),
    "tensorflow-serving-api": ("tensorflow_serving",),
    "torch": ("torch",),
    "attrs": ("attr", "attrs"),
    "pyjwt": ("jwt",),
    "pymupdf": ("fitz",),
    "pyzmq": ("zmq",),
    "pycryptodome": ("Crypto",),
    "gitpython": ("git",),
    "pyopenssl": ("OpenSSL",),
}
# What a pre-installed distribution is installed as now: OpenCV without its GUI libraries, which
# slim images lack (Cortex's images had them; `import cv2` is the same).
_INSTALLED_AS = {"opencv-python": "opencv-python-headless"}


@dataclass(frozen=True)
class Addition:
    """A pre-installed package the image installs, and the import that needs it."""

    distribution: str  # as Cortex named it: "scikit-learn"
    requirement: str  # what pip installs: "scikit-learn>=0.22"
    site: ImportSite
    release: str  # "v0.15"

    def note(self) -> str:
        installed = self.requirement.split(">=")[0]
        return (
            f"{self.site.file}:{self.site.line} imports {self.site.module}: Cortex {self.release} "
            f"pre-installed {self.distribution}; the image installs {installed}"
        )


@dataclass(frozen=True)
class ImportReport:
    additions: tuple[Addition, ...]  # one per distribution, at its first import
    unprovided: tuple[ImportSite, ...]  # one per module that nothing installs, at its first import

    @property
    def requirements(self) -> tuple[str, ...]:
        return tuple(addition.requirement for addition in self.additions)


def import_notes(report: ImportReport, added: bool = True) -> tuple[str, ...]:
    """The lines validate and render print: each addition (or, with additions off, what the
    image lacks), then each import that nothing installs."""
    lines = [
        addition.note()
        if added
        else addition.note().split("; the image")[0] + "; not added "
        "(--no-preinstalled): list it in the requirements file if the code needs it"
        for addition in report.additions
    ]
    lines += [
        f"warning: {site.file}:{site.line} imports {site.module}, which nothing installs (not "
        "the standard library, the project, its requirements file, the runtime, or a package "
        "Cortex pre-installed)"
        for site in report.unprovided
    ]
    return tuple(lines)


def canonical(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def modules_of(distribution: str) -> tuple[str, ...]:
    """The top-level modules a distribution provides, as far as its name tells."""
    name = canonical(distribution)
    return _IMPORT_NAMES.get(name, (name.replace("-", "_"),))


def preinstalled(release_minor: int, predictor_type: str) -> dict[str, str]:
    """{distribution: version} of Cortex's image for the predictor type at that release; ONNX
    ran in the python image from v0.33."""
    per_type = _preinstalled_data()["releases"].get(str(release_minor), {})
    return per_type.get(predictor_type) or per_type.get("python") or {}


@functools.lru_cache(maxsize=1)
def _preinstalled_data() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("data/cortex_preinstalled.json").read_text("utf-8")
    return json.loads(text)


def check_imports(api: ApiSpec, files: ProjectFiles) -> ImportReport:
    """What the API's image must add for its imports, and the imports nothing provides."""
    provided = set(STDLIB) | set(RUNTIME_MODULES) | local_modules(files, api.predictor.python_path)
    for requirement in _runtime_requirements(api):
        provided.update(modules_of(requirement))
    requirements_file = files.shipped_file(api.predictor.dependencies.pip)
    if requirements_file is not None:
        for _, name, _ in requirement_lines(requirements_file, api.predictor.dependencies.pip):
            provided.update(modules_of(name))
    minor = int(api.cortex.assumed.removeprefix("v0."))
    by_module: dict[str, tuple[str, str]] = {}
    for distribution, version in preinstalled(minor, api.predictor.type).items():
        for module in modules_of(distribution):
            by_module.setdefault(module, (distribution, version))
    additions: dict[str, Addition] = {}
    unprovided: dict[str, ImportSite] = {}
    for site in project_imports(files):
        if site.module in provided:
            continue
        if site.module in by_module:
            distribution, version = by_module[site.module]
            if distribution not in additions:
                name = _INSTALLED_AS.get(canonical(distribution), distribution)
                # a local version label ("1.6.0+cpu") is no valid lower bound
                floor = version.split("+")[0]
                additions[distribution] = Addition(
                    distribution, f"{name}>={floor}", site, api.cortex.assumed
                )
        elif not site.optional and site.module not in unprovided:
            unprovided[site.module] = site
    return ImportReport(tuple(additions.values()), tuple(unprovided.values()))


def _name_of(requirement: str) -> str:
    return re.split(r"[<>=!~ ;\[]", requirement, maxsplit=1)[0]


def _runtime_requirements(api: ApiSpec) -> list[str]:
    """The distributions every image has: the runtime's and the predictor type's client's."""
    runtime = runtime_files.REQUIREMENTS_FILE
    names = [name for _, name, _ in requirement_lines(runtime, "runtime requirements")]
    names += [_name_of(requirement) for requirement in images.framework_packages(api)]
    return names

"""`cortex-build serve`: one API on this host, without Docker, in the current Python environment.

A traffic splitter is served the same way, alone (`--api SPLITTER`): its APIs are served by
other `cortex-build serve` commands, and `--backend API=URL` says where each one listens.

It runs exactly what images run (`python -m cortex_serve`, the same gunicorn processes and
threads, from the runtime this package ships), so the native dev loop answers as the image will.
Before starting it checks that the user's requirements.txt is installed here and names every
missing package; `.env` is passed as environment variables, as compose and Kubernetes pass it
(a variable already set in the shell wins; `predictor.env` fills in what neither sets).
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import click
from packaging.requirements import InvalidRequirement, Requirement

from . import runtime_files
from .errors import Problem, UserError, option_problem, project_problem, unknown_api_message
from .project_files import DOTENV_FILE, read_dotenv, requirement_lines
from .spec import ApiSpec, Project, SplitterSpec
from .splitters import all_apis


def pick_api(project: Project, api_name: str | None, realtime: bool = False) -> ApiSpec:
    """The API named (or the only one); with `realtime`, a job kind is refused, saying to run it."""
    api = _pick_api(project, api_name)
    if realtime and api.is_job:
        raise UserError(
            option_problem(
                "--api",
                f"API {api.name} is a {api.kind}: a job that takes no requests; run one with "
                f"cortex-build run {project.root} --api {api.name}",
            )
        )
    return api


def _pick_api(project: Project, api_name: str | None) -> ApiSpec:
    names = [api.name for api in project.apis]
    if api_name is None and not names and project.container_apis:
        raise UserError(
            project_problem(
                project,
                "every API here is given as containers (Cortex v0.36+): there is no predictor "
                "code to serve natively; `cortex-build render` writes them into "
                "docker-compose.yaml and k8s/",
            )
        )
    if api_name is None:
        if len(names) == 1:
            return project.apis[0]
        splitters = "".join(f"; traffic splitter {s.name}" for s in project.splitters)
        raise UserError(
            project_problem(
                project,
                f"the project has {len(names)} APIs ({', '.join(names)}{splitters}): "
                "choose one with --api NAME",
            )
        )
    try:
        return project.api(api_name)
    except KeyError:
        raise UserError(option_problem("--api", unknown_api_message(project, api_name))) from None


def _requirement(line: str) -> Requirement | None:
    """The line as a PEP 508 requirement; None for what pip reads but packaging does not (pip
    options after the name, `name @ ./path`): those are only checked for being installed."""
    try:
        return Requirement(line)
    except InvalidRequirement:
        return None


def missing_requirements(file: Path, display: str, remedy: str) -> list[Problem]:
    """A problem per requirement of `file` that this Python lacks, or has in a version outside
    the requirement's; `remedy` says what to do about it."""
    problems = []
    for number, name, line in requirement_lines(file, display):
        requirement = _requirement(line)
        if requirement is not None and requirement.marker and not requirement.marker.evaluate():
            continue  # not for this Python or platform
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            message = f'package "{name}" is not installed in this Python ({sys.executable})'
        else:
            specifier = requirement.specifier if requirement is not None else None
            if not specifier or specifier.contains(installed, prereleases=True):
                continue
            message = (
                f'package "{name}" is installed in version {installed}, but {display} asks for '
                f"{name}{specifier} ({sys.executable})"
            )
        problems.append(
            Problem(file=display, line=number, api=None, field=None, message=f"{message}; {remedy}")
        )
    return problems


def missing_runtime_packages() -> list[Problem]:
    """The runtime's own requirements (runtime_base/requirements.txt) must be here too."""
    return missing_requirements(
        runtime_files.REQUIREMENTS_FILE, "cortex-build runtime", "reinstall cortex-build"
    )


# What images get from their framework base image, and a native run needs installed here.
FRAMEWORK_PACKAGES = {
    "onnx": ("onnxruntime", "onnxruntime-gpu"),
    "tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-gpu"),
}


def missing_framework(api: ApiSpec, config: str) -> list[Problem]:
    choices = FRAMEWORK_PACKAGES.get(api.predictor.type, ())
    for name in choices:
        try:
            importlib.metadata.distribution(name)
            return []
        except importlib.metadata.PackageNotFoundError:
            continue
    if not choices:
        return []
    return [
        Problem(
            file=config,
            line=api.line or None,
            api=api.name,
            field="predictor.type",
            message=(
                f'a {api.predictor.type} predictor needs the "{choices[0]}" package, which is '
                f"not installed in this Python ({sys.executable}): pip install {choices[0]}"
            ),
        )
    ]


def native_environment(project_root: Path) -> dict[str, str]:
    """This process' environment for the runtime (installed with cortex-build, so importable
    here as in images): the project's .env beneath what is set."""
    env = dict(os.environ)
    dotenv_file = project_root / DOTENV_FILE
    if dotenv_file.is_file():  # read as render reads it: the same values, the same errors
        for key, value in read_dotenv(dotenv_file).items():
            env.setdefault(key, value)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def check_native_requirements(project: Project, api: ApiSpec) -> None:
    """UserError naming every package the API needs that this Python lacks: the runtime's, the
    predictor type's and the project's requirements file."""
    root = project.root.resolve()
    problems = missing_runtime_packages() + missing_framework(api, project.config_file.name)
    dependencies = api.predictor.dependencies
    requirements = root / dependencies.pip
    if requirements.is_file():
        remedy = f"install the project's requirements first: pip install -r {requirements}"
        problems += missing_requirements(requirements, dependencies.pip, remedy)
    if problems:
        raise UserError(problems)


def serve_natively(
    project: Project,
    api_name: str | None,
    host: str,
    port: int,
    reload: bool = False,
    backends: tuple[str, ...] = (),
) -> int:
    """Checks requirements, then runs the runtime until it stops; its exit status."""
    splitter = next((s for s in project.splitters if s.name == api_name), None)
    if splitter is not None:
        return serve_splitter(project, splitter, host, port, backends)
    if backends:
        raise UserError(
            option_problem("--backend", "is for --api naming a traffic splitter of the project")
        )
    api = pick_api(project, api_name, realtime=True)
    root = project.root.resolve()
    check_native_requirements(project, api)
    dependencies = api.predictor.dependencies
    if (root / dependencies.shell).is_file():
        click.echo(
            f"note: {dependencies.shell} is not run natively (images run it to install system "
            "packages); install what it installs on this host yourself",
            err=True,
        )
    endpoints = " and ".join(dict.fromkeys(["/predict", api.endpoint]))
    click.echo(
        f"serving API {api.name} at http://{host}:{port} ({endpoints}); "
        f"{api.predictor.processes_per_replica} process(es) x "
        f"{api.predictor.threads_per_process} thread(s)"
        + ("; reloading on Python file changes" if reload else "")
        + "; Ctrl-C stops",
        err=True,
    )
    # The server deletes the spec once read (--remove-spec), and stops when the pipe's write end
    # closes (--parent-fd): with this process, even if it is killed by SIGKILL.
    workdir = tempfile.mkdtemp(prefix="cortex-build-serve-")
    read_end, write_end = os.pipe()
    try:
        spec_file = Path(workdir) / "api.json"
        spec_file.write_text(api.to_json())
        command = [sys.executable, "-m", "cortex_serve", "--spec", str(spec_file), "--remove-spec"]
        command += ["--project", str(root), "--host", host, "--port", str(port)]
        command += ["--parent-fd", str(read_end)]
        if reload:
            command.append("--reload")
        return run_forwarding_signals(command, native_environment(root), read_end)
    finally:
        os.close(write_end)
        shutil.rmtree(workdir, ignore_errors=True)  # if the server never read it


def backend_urls(splitter: SplitterSpec, given: tuple[str, ...], port: int) -> dict[str, str]:
    """--backend API=URL for each of the splitter's APIs, checked; UserError naming what is
    wrong, with the commands that would serve the missing APIs."""
    urls: dict[str, str] = {}
    problems: list[Problem] = []
    apis = [backend.api for backend in splitter.backends]
    for item in given:
        api, sep, url = item.partition("=")
        if not sep or api not in apis:
            problems.append(
                option_problem(
                    "--backend",
                    f"must be API=URL with API one of {', '.join(apis)} (got {item!r})",
                )
            )
        elif not url.startswith("http://") or len(url) <= len("http://"):
            problems.append(
                option_problem(
                    "--backend", f"{api}: the URL must be http://HOST:PORT (got {url!r})"
                )
            )
        else:
            urls[api] = url
    missing = [api for api in apis if api not in urls]
    if missing and not problems:
        starts = "; ".join(
            f"cortex-build serve PROJECT --api {api} --port {port + 1 + i}"
            for i, api in enumerate(missing)
        )
        problems.append(
            option_problem(
                "--backend",
                f"traffic splitter {splitter.name} needs the URL of {', '.join(missing)}: serve "
                f"each ({starts}) and pass --backend API=http://127.0.0.1:PORT for each",
            )
        )
    if problems:
        raise UserError(problems)
    return urls


def serve_splitter(
    project: Project, splitter: SplitterSpec, host: str, port: int, given: tuple[str, ...]
) -> int:
    """`python -m cortex_serve.splitter` in front of APIs served elsewhere on this host."""
    urls = backend_urls(splitter, given, port)
    routes = ", ".join(
        f"{b.api} {b.weight}%{' (shadow)' if b.shadow else ''}" for b in splitter.backends
    )
    click.echo(
        f"serving traffic splitter {splitter.name} at http://{host}:{port}{splitter.endpoint} "
        f"(and /predict): {routes}; Ctrl-C stops",
        err=True,
    )
    workdir = tempfile.mkdtemp(prefix="cortex-build-serve-")
    read_end, write_end = os.pipe()
    try:
        spec_file = Path(workdir) / "splitter.json"
        spec_file.write_text(splitter.runtime_json(all_apis(project), urls))
        command = [sys.executable, "-m", "cortex_serve.splitter", "--spec", str(spec_file)]
        command += ["--host", host, "--port", str(port), "--parent-fd", str(read_end)]
        return run_forwarding_signals(command, native_environment(project.root.resolve()), read_end)
    finally:
        os.close(write_end)
        shutil.rmtree(workdir, ignore_errors=True)


def run_forwarding_signals(
    command: list[str], env: dict[str, str], pass_fd: int | None = None
) -> int:
    """Runs the runtime (a server, a job) as a child until it ends, its exit status; `pass_fd`
    is passed to it (and closed here once passed). SIGTERM/SIGHUP are passed on; Ctrl-C reaches
    it directly (same process group) and is ignored here so that this process waits for the
    graceful stop."""
    try:
        process = subprocess.Popen(command, env=env, pass_fds=() if pass_fd is None else (pass_fd,))
    finally:
        if pass_fd is not None:
            os.close(pass_fd)

    def forward(signum: int, _frame: object) -> None:
        process.send_signal(signum)

    previous = {
        signum: signal.signal(signum, handler)
        for signum, handler in (
            (signal.SIGTERM, forward),
            (signal.SIGHUP, forward),
            (signal.SIGINT, signal.SIG_IGN),
        )
    }
    try:
        return process.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

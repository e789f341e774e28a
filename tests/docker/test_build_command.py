"""`cortex-build build` and `push` on the real engine: how failures are reported, and a push to a
registry on loopback (Debian's docker-registry) with the digest it answers."""

from __future__ import annotations

import io
import json
import shutil
import socket
import subprocess
import time
import uuid

import httpx
import pytest
from cortex_build.build import BuildTarget, build_images
from cortex_build.engine import connect_engine
from e2e import api_config, cortex_build, make_project


@pytest.fixture
def tag(docker_client):
    """A tag of this test's own; every image named with it is removed afterwards."""
    tag = f"e2e-{uuid.uuid4().hex[:10]}"
    yield tag
    for image in docker_client.images.list():
        for reference in image.tags:
            if reference.endswith(f":{tag}"):
                docker_client.images.remove(reference, force=True)


def test_a_failing_step_is_named_with_the_tail_of_its_output(base_image, tmp_path, tag):
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f"FROM {base_image}\n"
        # the engine may pass stderr on before stdout written earlier: the sleep orders them
        "RUN for i in $(seq 1 30); do echo line $i; done; sleep 1; echo broken >&2; exit 3\n"
        "RUN echo never\n"
    )
    lines: list[str] = []
    [result] = build_images(
        connect_engine(), [BuildTarget("api", context, f"cbtest-fail:{tag}")], emit=lines.append
    )
    assert not result.ok
    assert result.failed_step == (
        "2/3 RUN for i in $(seq 1 30); do echo line $i; done; sleep 1; echo broken >&2; exit 3"
    )
    assert "returned a non-zero code: 3" in (result.error or "")
    assert result.tail[-2:] == ("line 30", "broken")  # no colour codes, the last lines
    assert "line 1" not in result.tail  # only the tail
    assert "never" not in "\n".join(lines)


def test_on_a_terminal_several_builds_log_above_a_status_line(base_image, tmp_path, tag):
    targets = []
    for name in ("first", "second"):
        context = tmp_path / name
        context.mkdir()
        (context / "Dockerfile").write_text(f"FROM {base_image}\nRUN echo {name} {tag}\n")
        targets.append(BuildTarget(name, context, f"cbtest-{name}:{tag}"))
    terminal = io.StringIO()
    lines: list[str] = []
    results = build_images(connect_engine(), targets, emit=lines.append, terminal=terminal)
    assert [r.ok for r in results] == [True, True]
    assert lines == []  # on a terminal, the log goes there, under the status line
    output = terminal.getvalue()
    assert "\n[0/2 built] first waiting, second waiting" in output  # under the first log line
    assert "\n[2/2 built] first built, second built" in output
    assert f"second | step 2/2 RUN echo second {tag}\n" in output
    assert output.endswith("\r\x1b[K")  # cleared for the summary table


def test_a_bad_requirement_fails_the_build_naming_api_step_and_pip_error(base_image, tmp_path, tag):
    project = make_project(
        tmp_path / "project", api_config("broken"), "cortex-build-no-such-package==0.0.1\n"
    )
    result = cortex_build("build", project, "--base-image", base_image, "--tag", tag)
    assert result.returncode == 1, result.stdout + result.stderr
    report = result.stdout[result.stdout.index("API  ") :]
    assert "broken" in report and "FAILED" in report
    assert "broken: build failed at step" in report
    assert "install-requirements.sh" in report  # the failing step
    assert "cortex-build-no-such-package" in report  # pip's own words, in the tail


def test_other_apis_still_build_and_are_reported_when_one_fails(
    base_image, tmp_path, tag, docker_client
):
    unpullable = "127.0.0.1:1/cortex-build-test/missing:1"
    project = make_project(
        tmp_path / "project", api_config("good", base_image) + api_config("bad", unpullable)
    )
    result = cortex_build("build", project, "--tag", tag)
    assert result.returncode == 1, result.stdout + result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines() if tag in line}
    assert rows["good"][2] == "built" and rows["bad"][2] == "FAILED", result.stdout
    assert "bad: build failed at step 1/" in result.stdout
    assert "--base-image" in result.stdout  # the hint for a base image that cannot be pulled
    assert docker_client.images.get(f"good:{tag}")  # built despite its sibling's failure
    assert "good | " in result.stdout and "bad  | " in result.stdout  # prefixed lines


def test_push_to_an_unreachable_registry_names_the_reference(base_image, tmp_path, tag):
    project = make_project(tmp_path / "project", api_config("pushed"))
    registry = "127.0.0.1:1/team"
    result = cortex_build(
        "build", project, "--base-image", base_image, "--registry", registry, "--tag", tag,
        "--push",
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{registry}/pushed:{tag}: push failed: " in result.stdout
    assert "127.0.0.1:1" in result.stdout.split("push failed: ")[1]  # the engine's reason


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def local_registry(tmp_path):
    """Debian's docker-registry (the registry:2 server) on a loopback port, no auth."""
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.skip("docker-registry is not installed (apt-get install docker-registry)")
    port = free_port()
    config = tmp_path / "registry.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {tmp_path / 'registry'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    server = subprocess.Popen(
        [binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(f"http://{address}/v2/", timeout=1).raise_for_status()
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail(f"docker-registry did not start: {server.stderr.read()!r}")
            time.sleep(0.2)
    yield address
    server.terminate()
    server.wait(timeout=10)


def test_build_push_reports_the_digest_the_registry_serves(
    base_image, tmp_path, tag, local_registry
):
    project = make_project(tmp_path / "project", api_config("first") + api_config("second"))
    registry = f"{local_registry}/team"
    result = cortex_build(
        "build", project, "--base-image", base_image, "--registry", registry, "--tag", tag,
        "--push", "--jobs", "1",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    for api in ("first", "second"):
        reference = f"{registry}/{api}:{tag}"
        [row] = [
            p for p in map(str.split, result.stdout.splitlines()) if p[:2] == [reference, "pushed"]
        ]
        assert row[2].startswith("sha256:"), result.stdout
        manifest = httpx.head(
            f"http://{local_registry}/v2/team/{api}/manifests/{tag}",
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        )
        assert manifest.status_code == 200
        assert manifest.headers["Docker-Content-Digest"] == row[2]

    # `push` on its own pushes what was built before, and names the same digests
    again = cortex_build("push", project, "--registry", registry, "--tag", tag, "--api", "first")
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"{registry}/first:{tag}  pushed  " in again.stdout


def test_building_over_another_projects_image_says_so(base_image, tmp_path, tag):
    # two projects with an API named "iris": the same image name unless --registry/--tag differ
    first = make_project(tmp_path / "first", api_config("iris"))
    second = make_project(tmp_path / "second", api_config("iris"))
    common = ("--base-image", base_image, "--registry", "cortex-build-e2e/shared", "--tag", tag)
    built = cortex_build("build", first, *common)
    assert built.returncode == 0, built.stdout + built.stderr
    assert "is the image of API" not in built.stdout
    again = cortex_build("build", second, *common)
    assert again.returncode == 0, again.stdout + again.stderr
    assert (
        f"note: cortex-build-e2e/shared/iris:{tag} is the image of API iris of project first "
        "until this build replaces it; give --tag or --registry to keep both"
    ) in again.stdout
    rebuilt = cortex_build("build", second, *common)  # its own image: nothing to say
    assert "is the image of API" not in rebuilt.stdout


def test_build_json_writes_the_results_as_one_document(base_image, tmp_path, tag):
    project = make_project(tmp_path / "p", api_config("echo"))
    result = cortex_build(
        "build",
        project,
        "--base-image",
        base_image,
        "--registry",
        "cortex-build-e2e/json",
        "--tag",
        tag,
        "--json",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    document = json.loads(result.stdout)  # the build's log went to stderr
    assert document["ok"] is True
    (api,) = document["apis"]
    assert (api["api"], api["image"], api["ok"]) == (
        "echo",
        f"cortex-build-e2e/json/echo:{tag}",
        True,
    )
    assert api["size"] > 0 and api["image_id"].startswith("sha256:")
    assert "step 1/" in result.stderr

"""An image's runtime layer holds exactly the versions of the runtime's lock (on the lock's
Python, as the test base image's is), and a user's pin within a runtime range still wins."""

from __future__ import annotations

from pathlib import Path

from cortex_build.runtime_lock import load_lock, parse_lock
from e2e import api_config, make_project

# within the runtime's range (starlette>=0.27), and older than what the lock pins
USER_STARLETTE = "0.40.0"


def installed(docker_client, image: str) -> dict[str, str]:
    """{canonical name: version} of what the image's venv holds (pip freeze leaves out pip and
    setuptools)."""
    output = docker_client.containers.run(
        image, entrypoint=["python", "-m", "pip", "freeze", "--all"], remove=True
    ).decode()
    found = {}
    for line in output.splitlines():
        name, _, version = line.partition("==")
        found[name.lower().replace("_", "-")] = version
    for name in ("pip", "setuptools", "wheel"):
        found.pop(name, None)
    return found


def rendered_lock(context: Path) -> dict[str, str]:
    text = (context / "cortex" / "runtime-requirements.lock").read_text()
    lock = parse_lock(f"# python: {load_lock().python}\n{text}")
    return {name: package.version for name, package in lock.packages.items()}


def test_the_runtime_layer_installs_the_lock_and_a_users_pin_still_wins(
    build_project, docker_client, tmp_path: Path
) -> None:
    plain = build_project(make_project(tmp_path / "plain", api_config("locked")), "lock-plain")
    locked = rendered_lock(plain.out / "locked")
    assert locked["starlette"] != USER_STARLETTE
    assert installed(docker_client, plain.images["locked"]) == locked

    pinned = build_project(
        make_project(tmp_path / "pinned", api_config("locked"), f"starlette=={USER_STARLETTE}\n"),
        "lock-pinned",
    )
    assert rendered_lock(pinned.out / "locked") == locked  # the same runtime layer
    assert installed(docker_client, pinned.images["locked"]) == {
        **locked,
        "starlette": USER_STARLETTE,
    }

"""What `pip install .` ships: every package folder is listed in setup.cfg, and the installed
`cortex-build` validates and renders every example.

The tests and the images use the installed package (tox installs it without -e; images copy the
runtime from it), so a sub-package missing from `packages` breaks them only after install.
"""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_every_package_folder_is_listed_in_setup_cfg():
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    options = config["options"]
    listed = set(options["packages"].split())
    package_dir = dict(
        (name.strip(), folder.strip())
        for name, folder in (
            line.split("=") for line in options["package_dir"].split("\n") if "=" in line
        )
    )
    # Each folder is named by the deepest mapping holding it: runtime_base/cortex_serve is the
    # package cortex_serve, not cortex_build.runtime_base.cortex_serve.
    by_folder = {REPO / folder: package for package, folder in package_dir.items()}
    found = set()
    for folder in by_folder:
        for init in folder.rglob("__init__.py"):
            owner = max(
                (f for f in by_folder if init.is_relative_to(f)), key=lambda f: len(f.parts)
            )
            relative = init.parent.relative_to(owner)
            found.add(".".join([by_folder[owner], *relative.parts]))
    assert sorted(found - listed) == [], "add these to [options] packages in setup.cfg"


EXAMPLES = sorted(path.parent for path in (REPO / "examples").glob("*/cortex.yaml"))


@pytest.mark.parametrize("example", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_the_installed_command_validates_and_renders_every_example(example: Path, tmp_path: Path):
    # The console script of the environment running the tests: under tox, a plain `pip install .`
    cortex_build = Path(sys.executable).parent / "cortex-build"
    assert cortex_build.exists(), f"{cortex_build}: install the project first (pip install .)"
    validated = subprocess.run(
        [str(cortex_build), "validate", str(example)], capture_output=True, text=True
    )
    assert validated.returncode == 0, validated.stdout + validated.stderr
    out = tmp_path / "out"
    rendered = subprocess.run(
        [str(cortex_build), "render", str(example), "-o", str(out)], capture_output=True, text=True
    )
    assert rendered.returncode == 0, rendered.stdout + rendered.stderr
    table = validated.stdout.splitlines()
    header = next(index for index, line in enumerate(table) if line.startswith("API "))
    # the APIs' table ends at a blank line; the traffic splitters' table follows, if any
    end = table.index("", header) if "" in table[header:] else len(table)
    rows = [line.split() for line in table[header + 1 : end]]
    splitters = [line.split()[0] for line in table[end + 2 :] if line.strip()]
    for name in splitters:
        assert (out / name / "cortex" / "splitter.json").is_file()
        assert (out / "k8s" / name / "deployment.yaml").is_file()
    # APIs given as containers (v0.36+) have no build context: their images are the user's
    api_names = [row[0] for row in rows if "(containers)" not in row]
    assert rows, validated.stdout
    assert (out / "docker-compose.yaml").is_file()
    for row in rows:
        if "(containers)" in row:
            assert f"{row[0]}: images are given:" in rendered.stdout
            assert (out / "k8s" / row[0] / "kustomization.yaml").is_file()
    for name in api_names:
        assert (out / name / "Dockerfile").is_file()
        assert (out / name / "cortex" / "api.json").is_file()

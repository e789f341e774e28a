"""What `pip install .` ships: every package folder of the source tree is listed in setup.cfg.

The tests and the images use the installed package (tox installs it without -e; images copy the
runtime from it), so a sub-package missing from `packages` breaks them only after install.
"""

from __future__ import annotations

import configparser
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


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
    found = set()
    for package, folder in package_dir.items():
        for init in (REPO / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(REPO / folder)
            found.add(".".join([package, *relative.parts]))
    assert sorted(found - listed) == [], "add these to [options] packages in setup.cfg"

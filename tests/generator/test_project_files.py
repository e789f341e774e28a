"""Which project files reach an image (Cortex's rules plus .cortexignore), and .env checking."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cortex_build.errors import UserError
from cortex_build.project_files import collect_project_files, read_dotenv


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def paths(root: Path, **kwargs) -> list[str]:
    files = collect_project_files(root, root / "cortex.yaml", **kwargs)
    return [entry.path for entry in files.entries]


def test_cortex_rules_exclude_bytecode_dot_names_and_the_config(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "cortex.yaml": "",
            "predictor.py": "",
            "predictor.pyc": "",
            "lib/native.pyd": "",
            "lib/opt.pyo": "",
            "lib/__pycache__/x.cpython-311.pyc": "",
            "lib/util.py": "",
            ".env": "A=1\n",
            ".git/config": "",
            "data/.hidden": "",
            "data/values.json": "{}",
            "sub/cortex.yaml": "kept: only the root config is the config",
        },
    )
    assert paths(tmp_path) == [
        "data/values.json",
        "lib/util.py",
        "predictor.py",
        "sub/cortex.yaml",
    ]


def test_cortexignore_has_gitignore_semantics(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "cortex.yaml": "",
            ".cortexignore": "# comment\n*.csv\n!keep.csv\nnotebooks/\n/top.txt\nbuild/**/*.bin\n",
            "a.csv": "",
            "keep.csv": "",
            "notebooks/n.ipynb": "",
            "src/notebooks/deep.ipynb": "",
            "top.txt": "",
            "src/top.txt": "",
            "build/x/y.bin": "",
            "build/x/y.txt": "",
        },
    )
    assert paths(tmp_path) == ["build/x/y.txt", "keep.csv", "src/top.txt"]


def test_requirements_dependencies_and_dotenv_are_found(tmp_path: Path) -> None:
    write(
        tmp_path,
        {"cortex.yaml": "", "requirements.txt": "six\n", "dependencies.sh": "", ".env": "A=b\n"},
    )
    files = collect_project_files(tmp_path, tmp_path / "cortex.yaml")
    assert files.shipped_file("requirements.txt") == tmp_path / "requirements.txt"
    assert files.shipped_file("dependencies.sh") == tmp_path / "dependencies.sh"
    assert files.dotenv == tmp_path / ".env"
    # they stay project files too (Cortex shipped them); .env never does
    assert [e.path for e in files.entries] == ["dependencies.sh", "requirements.txt"]


def test_an_ignored_requirements_file_is_not_installed(tmp_path: Path) -> None:
    write(tmp_path, {"cortex.yaml": "", "requirements.txt": "six\n", ".cortexignore": "*.txt\n"})
    files = collect_project_files(tmp_path, tmp_path / "cortex.yaml")
    assert files.shipped_file("requirements.txt") is None


def test_symlink_inside_the_project_stays_a_relative_link(tmp_path: Path) -> None:
    write(tmp_path, {"cortex.yaml": "", "data/real.txt": "x"})
    (tmp_path / "alias").mkdir()
    os.symlink(tmp_path / "data" / "real.txt", tmp_path / "alias" / "link.txt")  # absolute
    os.symlink("data", tmp_path / "data-link")  # a folder link is not descended into
    files = collect_project_files(tmp_path, tmp_path / "cortex.yaml")
    by_path = {e.path: e for e in files.entries}
    assert by_path["alias/link.txt"].link_target == "../data/real.txt"
    assert by_path["data-link"].link_target == "data"
    assert by_path["data/real.txt"].link_target is None


def test_symlink_outside_the_project_is_an_error_naming_it(tmp_path: Path) -> None:
    project = tmp_path / "project"
    write(project, {"cortex.yaml": "", "ok.py": ""})
    write(tmp_path, {"secret.txt": "no"})
    os.symlink(tmp_path / "secret.txt", project / "leak.txt")
    os.symlink("..", project / "parent")
    with pytest.raises(UserError) as caught:
        collect_project_files(project, project / "cortex.yaml")
    messages = [str(p) for p in caught.value.problems]
    assert len(messages) == 2
    assert messages[0].startswith("leak.txt: is a symlink to ")
    assert "outside the project folder" in messages[0]
    assert messages[1].startswith("parent: is a symlink to ")


def test_an_ignored_outside_symlink_is_no_error(tmp_path: Path) -> None:
    project = tmp_path / "project"
    write(project, {"cortex.yaml": "", ".cortexignore": "leak.txt\n"})
    os.symlink("/etc/hostname", project / "leak.txt")
    assert paths(project) == []


def test_excluded_folders_are_left_out(tmp_path: Path) -> None:
    write(tmp_path, {"cortex.yaml": "", "p.py": "", "build/old/Dockerfile": ""})
    assert paths(tmp_path, exclude=[tmp_path / "build"]) == ["p.py"]


def test_a_custom_config_file_is_excluded(tmp_path: Path) -> None:
    write(tmp_path, {"prod.yaml": "", "cortex.yaml": "", "p.py": ""})
    files = collect_project_files(tmp_path, tmp_path / "prod.yaml")
    assert [e.path for e in files.entries] == ["cortex.yaml", "p.py"]


def test_dotenv_values_and_comments(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text('# settings\nA=1\n\nB="two words"\nexport C=3\nEMPTY=\n')
    assert read_dotenv(env) == {"A": "1", "B": "two words", "C": "3", "EMPTY": ""}


def test_dotenv_errors_name_the_line(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("A=1\nJUST_A_NAME\n1BAD=x\nB='unterminated\n")
    with pytest.raises(UserError) as caught:
        read_dotenv(env)
    assert [str(p) for p in caught.value.problems] == [
        ".env:2: JUST_A_NAME: must be VARIABLE=value",
        ".env:3: \"1BAD\" is not a valid variable name (letters, digits and '_', not starting "
        "with a digit)",
        ".env:4: must be VARIABLE=value (cannot be parsed)",
    ]


def test_a_symlink_loop_is_an_error_naming_it(tmp_path: Path) -> None:
    write(tmp_path, {"cortex.yaml": ""})
    os.symlink("loop-b", tmp_path / "loop-a")
    os.symlink("loop-a", tmp_path / "loop-b")
    with pytest.raises(UserError, match="loop-a: is a symlink that leads back to itself"):
        collect_project_files(tmp_path, tmp_path / "cortex.yaml")


def test_unreadable_ignore_and_dotenv_files_are_user_errors(tmp_path: Path) -> None:
    write(tmp_path, {"cortex.yaml": ""})
    (tmp_path / ".cortexignore").write_bytes(b"\xff\xfe*.csv\n")
    with pytest.raises(UserError, match=r"\.cortexignore: cannot be read as UTF-8 text"):
        collect_project_files(tmp_path, tmp_path / "cortex.yaml")
    (tmp_path / ".cortexignore").unlink()
    (tmp_path / ".env").write_bytes(b"A=\xff\n")
    with pytest.raises(UserError, match=r"\.env: cannot be read as UTF-8 text"):
        collect_project_files(tmp_path, tmp_path / "cortex.yaml")

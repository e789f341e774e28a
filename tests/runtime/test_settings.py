"""Numbers from environment variables (settings.py): one rule, checked before the server starts."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from cortex_serve.settings import NumberSetting, SettingError
from servers import PROJECTS, api_spec


def test_a_setting_reads_its_default_or_a_number_in_range(monkeypatch: pytest.MonkeyPatch) -> None:
    setting = NumberSetting("CORTEX_TEST_SETTING", 10.0, minimum=0, above_minimum=True)
    assert setting.read() == 10.0
    monkeypatch.setenv("CORTEX_TEST_SETTING", " 0.25 ")
    assert setting.read() == 0.25
    for bad, expected in [("0", "> 0"), ("-1", "> 0"), ("ten", "> 0"), ("nan", "> 0")]:
        monkeypatch.setenv("CORTEX_TEST_SETTING", bad)
        with pytest.raises(
            SettingError, match=f"CORTEX_TEST_SETTING='{bad}': expected a number {expected}"
        ):
            setting.read()
    whole = NumberSetting("CORTEX_TEST_SETTING", 5, whole=True)
    monkeypatch.setenv("CORTEX_TEST_SETTING", "1.5")
    with pytest.raises(SettingError, match="expected a whole number >= 0"):
        whole.read()


def test_the_server_refuses_every_bad_setting_at_once_before_it_starts(tmp_path) -> None:
    spec_file = tmp_path / "api.json"
    spec_file.write_text(api_spec("echo").to_json())
    env = {
        **os.environ,
        "CORTEX_SERVE_MAX_HEADERS": "lots",  # a server option
        "CORTEX_MODEL_POLL_SECONDS": "0",  # read by the model store, once warned and ignored
        "CORTEX_TF_SERVING_PREDICT_TIMEOUT": "-1",  # read by the TF client at model load
    }
    command = [sys.executable, "-m", "cortex_serve", "--spec", str(spec_file)]
    result = subprocess.run(
        [*command, "--project", str(PROJECTS / "echo"), "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stderr
    assert "CORTEX_SERVE_MAX_HEADERS='lots': expected a whole number >= 0" in result.stderr
    assert "CORTEX_MODEL_POLL_SECONDS='0': expected a number > 0" in result.stderr
    assert "CORTEX_TF_SERVING_PREDICT_TIMEOUT='-1': expected a number >= 0" in result.stderr
    assert "Booting worker" not in result.stderr + result.stdout  # nothing was started

"""The README's quick start, run as written in a fresh clone (the second command, the test
suite, is what CI itself runs). Where the system Python is externally managed (PEP 668:
``pip install`` refused outside a virtual environment), it runs with that interpreter."""

import os
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.strip().splitlines()]


def _externally_managed(python: str) -> bool:
    code = "import sysconfig; print(sysconfig.get_path('stdlib'))"
    result = subprocess.run([python, "-c", code], capture_output=True, text=True)
    return result.returncode == 0 and \
        (Path(result.stdout.strip()) / "EXTERNALLY-MANAGED").exists()


def test_the_readme_has_two_commands():
    commands = _readme_commands()
    assert commands == ["python3 quickstart.py", "bash .ci/run"]


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git to make a fresh clone")
def test_the_main_job_command_in_a_fresh_clone(tmp_path):
    clone = tmp_path / "layerwise"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    system = "/usr/bin/python3"
    if Path(system).exists() and _externally_managed(system):
        python_dir = "/usr/bin"  # the system Python that refuses pip outside a venv
    else:
        python_dir = str(Path(sysconfig.get_paths()["scripts"]))
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = f"{python_dir}:/usr/bin:/bin"
    command = _readme_commands()[0]
    result = subprocess.run(command, shell=True, cwd=clone, env=env, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "test loss" in result.stdout and "accuracy 0.9" in result.stdout
    assert (clone / "out" / "model.safetensors").exists()
    again = subprocess.run(command + " --epochs 1 --no-plot", shell=True, cwd=clone, env=env,
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "installing" not in again.stdout  # reused

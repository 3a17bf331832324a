"""The main job in one command, on any Python 3.10+: ``python3 quickstart.py``.

Creates (or reuses) the project's virtual environment ``.venv``, installs layerwise into it
with the extras the main job needs (``.[data,plot]``), and runs ``layerwise train``: the
seed's handwriting network on the bundled MNIST digits, reporting its test accuracy. Any
arguments are passed on to ``layerwise train``.

Working in a virtual environment is what lets this run on the system Pythons that refuse
``pip install`` outside one (PEP 668: Debian, Ubuntu, Fedora, Homebrew), as well as on
pyenv, conda and the python.org installers. A second run reuses the environment and skips
the install when ``pyproject.toml`` has not changed.

Afterwards, ``source .venv/bin/activate`` gives you ``layerwise`` and ``import layerwise``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".layerwise-quickstart"
EXTRAS = ".[data,plot]"


def _has_pip(python: Path) -> bool:
    return subprocess.run([str(python), "-m", "pip", "--version"], capture_output=True,
                          check=False).returncode == 0


def _create() -> None:
    """A virtual environment with pip; where this Python's venv cannot bring pip (Debian
    without python3-venv), one without it, given pip by the system's own pip."""
    if PYTHON.exists() and _has_pip(PYTHON):
        return
    print(f"creating the virtual environment {VENV}", flush=True)
    try:
        venv.EnvBuilder(with_pip=True, clear=VENV.exists()).create(VENV)
        return
    except (subprocess.CalledProcessError, OSError) as exc:
        reason = exc
    venv.EnvBuilder(with_pip=False, clear=True).create(VENV)
    system_pip = [sys.executable, "-m", "pip"]
    if subprocess.run([*system_pip, "--version"], capture_output=True).returncode == 0:
        subprocess.run([*system_pip, "--python", str(PYTHON), "install", "--quiet", "pip"],
                       check=True)
        return
    shutil.rmtree(VENV, ignore_errors=True)
    sys.exit(f"Python's venv module could not install pip ({reason}). On Debian or Ubuntu: "
             "sudo apt-get install python3-venv, then run this again.")


def _install() -> None:
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == digest:
        return  # installed before, from the same pyproject.toml
    print(f"installing layerwise{EXTRAS[1:]} into {VENV}", flush=True)
    subprocess.run([str(PYTHON), "-m", "pip", "install", "--quiet",
                    "--disable-pip-version-check", "-e", f"{ROOT}{EXTRAS[1:]}"], check=True)
    STAMP.write_text(digest)


def main() -> int:
    if sys.version_info < (3, 10):
        sys.exit(f"layerwise needs Python 3.10 or newer; this is {sys.version.split()[0]}.")
    _create()
    _install()
    command = [str(PYTHON), "-m", "layerwise", "train", *sys.argv[1:]]
    result = subprocess.run(command, cwd=ROOT, check=False)
    if result.returncode == 0:
        print(f"\nTo use layerwise yourself: source {BIN / 'activate'}")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())

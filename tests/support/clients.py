"""Run real pip and uv against a test index, isolated from this machine's package sources.

The machine's pip is preconfigured with extra local sources (a config file and PIP_FIND_LINKS);
a test that let them in would pass without ever touching the index under test. So every run
gets a clean environment: no PIP_*/UV_* variables from outside, PIP_CONFIG_FILE=/dev/null,
`uv --no-config`, a private HOME and caches, and fresh virtual environments made with uv.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent
UV = shutil.which("uv", path=str(BIN)) or "uv"


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def clean_env(home: Path) -> dict[str, str]:
    keep = ("PATH", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT", "SSL_CERT_FILE")
    env = {k: v for k, v in os.environ.items() if k in keep}
    home.mkdir(parents=True, exist_ok=True)
    env.update(
        {
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PIP_NO_INPUT": "1",
            "PIP_CACHE_DIR": str(home / "pip-cache"),
            "UV_CACHE_DIR": str(home / "uv-cache"),
            "UV_NO_CONFIG": "1",
            "UV_PYTHON_DOWNLOADS": "never",
            "NO_COLOR": "1",
        }
    )
    return env


def run(
    args: list[str],
    home: Path,
    *,
    cwd: Path | None = None,
    timeout: float = 300,
    extra_env: dict[str, str] | None = None,
    drop_env: tuple[str, ...] = (),
) -> Run:
    env = {**clean_env(home), **(extra_env or {})}
    for name in drop_env:
        env.pop(name, None)
    done = subprocess.run(
        args,
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def new_venv(path: Path, home: Path) -> Path:
    """A fresh, empty virtual environment; returns its python."""
    made = run([UV, "venv", "--no-config", "--python", sys.executable, str(path)], home)
    assert made.returncode == 0, made.output
    return path / "bin" / "python"


def pip(python: Path, home: Path, *args: str, timeout: float = 300) -> Run:
    """This checkout's pip, installing into the venv of `python`."""
    return run([sys.executable, "-m", "pip", "--python", str(python), *args], home, timeout=timeout)


def uv(
    home: Path,
    *args: str,
    cwd: Path | None = None,
    timeout: float = 300,
    extra_env: dict[str, str] | None = None,
) -> Run:
    return run([UV, *args], home, cwd=cwd, timeout=timeout, extra_env=extra_env)


def installed_version(python: Path, distribution: str, home: Path) -> str | None:
    code = (
        "import importlib.metadata as m, sys\n"
        "try: print(m.version(sys.argv[1]))\n"
        "except m.PackageNotFoundError: print('')\n"
    )
    found = run([str(python), "-c", code, distribution], home)
    return found.stdout.strip() or None

"""The client imports none of the server's dependencies.

`tests/e2e/test_client_tutorial.py` proves it the slow way (a fresh virtualenv without the server
extra); this test catches a new import on the client's path in a second, where those packages are
installed: it imports `packmatch.client` in a fresh interpreter and lists which server packages
that loaded.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]

# Import names that differ from the distribution's name.
IMPORT_NAMES = {
    "python-multipart": "multipart",
    "pydantic-settings": "pydantic_settings",
}


def server_modules() -> list[str]:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    names = []
    for spec in extras["server"]:
        requirement = Requirement(spec)
        name = IMPORT_NAMES.get(requirement.name, requirement.name)
        names.append(name.replace("-", "_").lower())
    return names


def test_the_server_extra_is_what_this_test_reads() -> None:
    assert {"numpy", "sqlalchemy", "fastapi", "rapidfuzz"} <= set(server_modules())


@pytest.mark.parametrize("module", ["packmatch.client", "packmatch.responses"])
def test_importing_the_client_loads_no_server_dependency(module: str) -> None:
    probe = (
        f"import sys, {module}\n"
        f"server = set({server_modules()!r})\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules} & server)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "", f"importing {module} loads server packages: {done.stdout.strip()}"

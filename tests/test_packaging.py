"""What a non-editable install carries (docs/operations.md installs the project with
``pip install /path/to/the/clone``): the provisioning API's contract, the sample captures
and the example configurations, found where the installed code looks for them."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_carries_its_data_and_the_installed_code_finds_it(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(ROOT), "-w", str(tmp_path)],
                   check=True, capture_output=True, timeout=300)
    wheel = next(tmp_path.glob("cx_gateway-*.whl"))
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(site)
    samples = {p.relative_to(ROOT).as_posix() for p in (ROOT / "captures" / "samples").glob("*.pcapng")}
    examples = {p.relative_to(ROOT).as_posix() for p in (ROOT / "gateway" / "examples").glob("*.toml")}
    assert samples and examples and samples | examples <= names
    assert (site / "gateway" / "provisioning" / "openapi.json").read_bytes() == (ROOT / "docs" / "openapi.json").read_bytes()
    # the installed code, away from the clone, serves the same contract
    probe = ("import gateway, json; from gateway.provisioning.server import openapi_document; "
             "print(gateway.__file__); print(json.loads(openapi_document())['openapi'])")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, timeout=60,
                          env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}, check=True)
    where, version = done.stdout.split()
    assert Path(where).is_relative_to(site) and version.startswith("3.")

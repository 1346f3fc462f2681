"""Install smoke test: a built wheel carries its configs and runs from any directory."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import TINY

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_installs_and_runs_outside_the_checkout(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", wheels, ROOT],
        check=True, cwd=tmp_path,
    )
    [wheel] = wheels.glob("posbench-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {Path(n).relative_to("posbench/configs").as_posix() for n in names if n.startswith("posbench/configs/")}
    expected = {p.relative_to(ROOT / "configs").as_posix() for p in (ROOT / "configs").rglob("*.yaml")}
    assert shipped == expected

    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", site, wheel], check=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}

    def installed(*args):
        return subprocess.run([site / "bin" / "posbench", *args], cwd=elsewhere, env=env, capture_output=True, text=True)

    where = subprocess.run(
        [sys.executable, "-c", "import posbench; print(posbench.__file__)"], cwd=elsewhere, env=env,
        capture_output=True, text=True, check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(site)
    assert installed("list").returncode == 0
    out = installed("train", "encoding=alibi", "task=sort", "model=decoder", *TINY)
    assert out.returncode == 0, out.stderr
    assert len(list((elsewhere / "outputs" / "runs").rglob("results.json"))) == 1

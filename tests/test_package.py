"""The package as users install it: a wheel holds one top-level name, `kore_sessions`, with its
SQL models and report templates, and works from any folder without the repository."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .forked_command import run_python

ROOT = Path(__file__).resolve().parents[1]
# The folders the package is made of, and the installed name of each.
PACKAGE_FOLDERS = {
    "pipelines": "kore_sessions",
    "sources/kore_sessions": "kore_sessions/source",
    "sandbox": "kore_sessions/sandbox",
}
MODELS = sorted(path.relative_to(ROOT / "sql").as_posix() for path in (ROOT / "sql").glob("*/*.sql"))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from a copy of the repository (what git tracks, as a clone has it; no
    build folder left in the working tree), as `pip install .` builds it."""
    folder = tmp_path_factory.mktemp("wheel")
    source = tmp_path_factory.mktemp("source")
    listing = ["git", "ls-files", "--cached", "--others", "--exclude-standard"]
    tracked = subprocess.run(listing, cwd=ROOT, capture_output=True, text=True, check=True)
    for name in tracked.stdout.splitlines():
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(folder)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (built,) = folder.glob("kore_sessions-*.whl")
    return built


def test_the_wheel_installs_one_name_with_its_sql_and_templates(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"kore_sessions"}, f"nothing generic at the top of site-packages: {tops}"
    assert sorted(n.removeprefix("kore_sessions/sql/") for n in names if n.endswith(".sql")) == MODELS
    assert {"kore_sessions/report/page.html", "kore_sessions/report/no_data.html"} <= set(names)
    assert "kore_sessions/source/api/client.py" in names and "kore_sessions/sandbox/app.py" in names
    modules = {
        f"{installed}/{path.relative_to(ROOT / folder).as_posix()}"
        for folder, installed in PACKAGE_FOLDERS.items()
        for path in (ROOT / folder).rglob("*.py")
    }
    assert sorted(modules - set(names)) == [], "every module of the tree is in the wheel"


def test_the_installed_package_finds_every_model_anywhere(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = (
        "import kore_sessions, kore_sessions.cli\n"
        "from kore_sessions.warehouse.model_files import discover_models\n"
        "print(kore_sessions.__file__)\n"
        "print(len(discover_models()))\n"
    )
    result = run_python(["-c", probe], {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}, tmp_path, 120)
    assert result.returncode == 0, result.stderr
    where, models = result.stdout.split()
    assert Path(where).is_relative_to(site), "the wheel's package, not the repository's folders"
    assert int(models) == len(MODELS)

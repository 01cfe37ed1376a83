"""A plain (non-editable) install can run `flask db upgrade`: the Alembic
migrations travel inside the wheel."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(out),
                           str(ROOT)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (found,) = out.glob("bleepstore-*.whl")
    return found


def test_the_wheel_contains_the_migrations(wheel):
    """The source tree's top-level migrations/ folder (as `flask db init` makes it)
    is in the wheel, every file of it, as bleepstore_app/migrations/."""
    source = ROOT / "migrations"
    assert not (ROOT / "bleepstore_app" / "migrations").exists(), "the Alembic folder is top-level now"
    expected = {"alembic.ini", "env.py", "script.py.mako"}
    expected |= {f"versions/{p.name}" for p in (source / "versions").glob("*.py")}
    assert "versions/0001_initial_schema.py" in expected, sorted(expected)
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in sorted(expected):
        assert f"bleepstore_app/migrations/{name}" in names, name
    assert not any(n.startswith("migrations/") for n in names), "no top-level 'migrations' package in site-packages"


def test_flask_db_upgrade_from_the_installed_wheel(wheel, tmp_path):
    """The wheel installed into its own directory, outside the source tree; the
    dependencies come from the test venv's site-packages (on PYTHONPATH, where
    .pth files, and so the editable install of the source tree, are not read)."""
    target = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target), str(wheel)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    database = tmp_path / "meta.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLEEPSTORE_")}
    env.update(PYTHONPATH=f"{target}{os.pathsep}{sysconfig.get_paths()['purelib']}", FLASK_APP="bleepstore_app",
               BLEEPSTORE_METADATA_SQLITE_PATH=str(database),
               BLEEPSTORE_STORAGE_LOCAL_ROOT_DIR=str(tmp_path / "objects"))
    where = subprocess.run([sys.executable, "-S", "-c", "import bleepstore_app; print(bleepstore_app.MIGRATIONS_DIR)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert where.returncode == 0, where.stderr
    assert where.stdout.strip() == str(target / "bleepstore_app" / "migrations")
    upgrade = subprocess.run([sys.executable, "-S", "-m", "flask", "db", "upgrade"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=120)
    assert upgrade.returncode == 0, upgrade.stdout[-2000:] + upgrade.stderr[-2000:]
    with sqlite3.connect(database) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"objects", "buckets", "alembic_version"} <= tables

from setuptools import find_packages, setup

# The top-level migrations/ folder (env.py, script.py.mako, alembic.ini, versions/)
# ships inside the wheel as bleepstore_app/migrations: a package mapping, because it
# sits beside the package in the source tree, not inside it. The rest of the metadata
# is in setup.cfg.
MIGRATIONS = {"bleepstore_app.migrations": "migrations",
              "bleepstore_app.migrations.versions": "migrations/versions"}

setup(packages=find_packages(include=["bleepstore_app", "bleepstore_app.*"]) + list(MIGRATIONS),
      package_dir=MIGRATIONS)

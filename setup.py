"""Build step that ships the project's data with the package: a wheel carries `sql/` and `assets/` as
`dagster_project/_data/`, where `config.DistillConfig.data_path` finds them when no checkout is around
(an editable install reads them from the checkout itself)."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

DATA = ("sql", "assets")


class BuildWithData(build_py):
    def run(self) -> None:
        super().run()
        root = Path(__file__).resolve().parent
        target = Path(self.build_lib) / "dagster_project" / "_data"
        for name in DATA:
            shutil.copytree(root / name, target / name, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildWithData})

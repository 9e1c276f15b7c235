"""Packaging hook (the project's metadata is in pyproject.toml): ship the repository's one config folder, conf/,
inside the built package as visionlab/conf, so an installed visionlab finds its configs from any directory.
Source checkouts and editable installs read conf/ in place (visionlab.config.location.config_dir)."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

CONF = Path(__file__).resolve().parent / "conf"


class BuildPyWithConfigs(build_py):
    def run(self):
        super().run()
        shutil.copytree(CONF, Path(self.build_lib) / "visionlab" / "conf", dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildPyWithConfigs})

"""Where the Hydra configs are: the repository keeps them in one real folder, ``conf/`` at its root.

A built wheel ships that folder inside the package as ``visionlab/conf`` (see setup.py), so an installed
visionlab finds them from any working directory; a source checkout or an editable install reads the
repository's ``conf/`` directly.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # src/visionlab
ROOT_CONFIG = "train.yaml"


def config_dir() -> Path:
    """The folder holding train.yaml and the config groups."""
    for candidate in (PACKAGE_DIR / "conf", PACKAGE_DIR.parents[1] / "conf"):
        if (candidate / ROOT_CONFIG).is_file():
            return candidate
    raise RuntimeError(
        f"visionlab's configs are missing: neither {PACKAGE_DIR / 'conf'} nor the repository's "
        "conf/ exists. Reinstall visionlab (pip install visionlab, or pip install -e <checkout>)."
    )

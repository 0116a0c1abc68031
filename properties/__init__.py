"""The plugin's yaml defaults, installed inside the package as ``recbole_mdsrec.properties``.

The repository keeps them in ``properties/`` (``setup.cfg`` maps the folder into the
package), so a checkout, an editable install and a wheel read the same files, through
``importlib.resources``: ``overall.yaml`` (every model), ``model/<Model>.yaml``,
``dataset/<dataset>.yaml``, ``grid.yaml`` (side-by-side grids), ``tuning/<Model>.yaml``
(search spaces) and ``variants/<Model>.yaml`` (named presets).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def path(*parts: str) -> Path:
    """The file ``parts`` below this folder, as a path on disk (pip installs packages
    unzipped, and RecBole opens its config files by path)."""
    return Path(str(resources.files(__name__).joinpath(*parts)))

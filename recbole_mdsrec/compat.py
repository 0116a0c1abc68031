"""What RecBole 1.2.1 needs from today's stack, installed explicitly by ``install()``.

The plugin's ``Config`` and every command-line entry call ``install()``; importing the
plugin changes nothing. It refuses the versions known to corrupt RecBole's data silently,
and restores the numpy aliases (``np.float`` ...) that RecBole's metrics use: RecBole only
restores them in ``Config.__init__``, and a config rebuilt from a checkpoint's plain
options may meet the metrics first. Everything else that differs from stock RecBole on
this stack is done by the plugin's own classes (``training/trainer.py``, ``config.py``).

Why pins and not patches (``constraints.txt``): pandas 3 turns RecBole's in-place NaN
filling into a silent no-op (NaNs reach the tensors), and numpy 2 removed the aliases that
RecBole's ``Config`` restores by assignment.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_installed = False


def check_stack() -> None:
    """Refuse versions known to corrupt RecBole's data silently."""
    if int(np.__version__.split(".")[0]) >= 2:
        raise ImportError(
            f"numpy {np.__version__} is installed, but RecBole 1.2.1 needs numpy<2 "
            "(its Config uses aliases numpy 2 removed). Fix: pip install -c constraints.txt -e ."
        )
    if int(pd.__version__.split(".")[0]) >= 3:
        raise ImportError(
            f"pandas {pd.__version__} is installed, but RecBole 1.2.1 needs pandas<3 "
            "(pandas 3 makes its NaN filling a silent no-op). Fix: pip install -c constraints.txt -e ."
        )


def install() -> None:
    """Check the stack and install RecBole's numpy aliases, once per process."""
    global _installed
    if _installed:
        return
    check_stack()
    from recbole.config import Config as RecBoleConfig

    RecBoleConfig.compatibility_settings(None)  # RecBole's own method; it never reads its ``self``
    _installed = True

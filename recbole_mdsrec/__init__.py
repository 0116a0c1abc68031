"""recbole-mdsrec: MDSRec and its baselines as a RecBole plugin.

Kept free of imports on purpose: ``run.py`` reads ``recbole_mdsrec.launch`` before torch
is loaded, and importing the plugin changes nothing in RecBole, torch or numpy (the plugin's
``Config`` and commands call ``compat.install()`` when they are used).
"""

__version__ = "0.1.0"

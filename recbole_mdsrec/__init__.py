"""recbole-mdsrec: MDSRec and its baselines as a RecBole plugin.

Kept free of imports on purpose: ``run.py`` reads ``recbole_mdsrec.launch`` before torch
is loaded. Every module that touches RecBole imports ``recbole_mdsrec.compat`` first.
"""

__version__ = "0.1.0"

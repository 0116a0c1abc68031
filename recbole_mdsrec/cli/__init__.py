"""The command line: ``run.py`` (also ``python -m recbole_mdsrec``), ``python -m
recbole_mdsrec.prepare`` and ``python -m recbole_mdsrec.graph_signal``.

It sits above everything else: it may import any part of the library, and no module of the
library imports it (``tests/test_layout.py`` checks the rule).
"""

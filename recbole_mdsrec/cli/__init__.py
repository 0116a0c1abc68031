"""The command line: ``run.py`` (also ``python -m recbole_mdsrec.cli``), ``python -m
recbole_mdsrec.cli.prepare``, ``python -m recbole_mdsrec.cli.graph_signal`` and ``python -m
recbole_mdsrec.cli.summary``.

It sits above everything else: it may import any part of the library, and no module of the
library imports it (``tests/test_layout.py`` checks the rule).
"""

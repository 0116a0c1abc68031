"""Side-by-side tables: every model (or preset) × seed under one protocol, tuned on
validation with the same budget, written to ``results/<dataset>/``.

``plan`` (what to run, resolved before training), ``executor`` (here, or in processes of
their own), ``progress``, ``store`` (runs and their configs on disk) and ``grid``, which
joins them; ``tuning`` the search spaces, ``stats`` the numbers, ``report`` the table and
chart. The command-line options are in ``recbole_mdsrec/cli/grid.py``."""

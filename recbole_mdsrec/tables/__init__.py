"""Side-by-side tables: every model (or preset) × seed under one protocol, tuned on
validation with the same budget, written to ``results/<dataset>/``.

``grid`` plans and runs (resume, failures, progress), ``tuning`` the search spaces,
``store`` the runs and their configs on disk, ``stats`` the numbers, ``report`` the table
and chart, ``command`` the ``run.py`` options."""

"""The console entry point's launcher (``rollout-watchdog``), outside the ``watchdog`` package.

The import package of rollout-watchdog is ``watchdog``, the same name as the PyPI
project ``watchdog`` (file-system events). When both are installed in one environment
one shadows or overwrites the other, and ``from watchdog.cli.main import main`` would
fail with an ImportError before any of our code runs. This package has its own name so
the entry point can check first and explain (see ``launcher.py``).
"""

"""``python -m recbole_mdsrec.summary``: the command in ``recbole_mdsrec/cli/summary.py``."""

import sys

from recbole_mdsrec.cli.summary import main

if __name__ == "__main__":
    sys.exit(main())

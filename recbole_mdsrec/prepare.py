"""``python -m recbole_mdsrec.prepare``: the command in ``recbole_mdsrec/cli/prepare.py``."""

import sys

from recbole_mdsrec.cli.prepare import main

if __name__ == "__main__":
    sys.exit(main())

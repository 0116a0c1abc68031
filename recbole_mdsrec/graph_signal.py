"""``python -m recbole_mdsrec.graph_signal``: the command in ``recbole_mdsrec/cli/graph_signal.py``."""

import sys

from recbole_mdsrec.cli.graph_signal import main

if __name__ == "__main__":
    sys.exit(main())

"""``python -m recbole_mdsrec.cli``: the same command as ``run.py`` (for an installed package)."""

import sys

from recbole_mdsrec.launch import reexec_with_fast_malloc

if __name__ == "__main__":
    reexec_with_fast_malloc()
    from recbole_mdsrec.cli.run import main

    sys.exit(main(sys.argv[1:]))

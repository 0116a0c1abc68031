"""Train and evaluate any plugin or RecBole model, run side-by-side grids, recommend.

    python run.py --model=MDSRec --dataset=ml-100k-mm [--config_files=a.yaml,b.yaml] [--key=value ...]

See README.md for the options; ``python run.py --help`` lists them. ``python -m recbole_mdsrec.cli``
is the same command for an installed package.
"""

import sys

from recbole_mdsrec.launch import reexec_with_fast_malloc

if __name__ == "__main__":
    reexec_with_fast_malloc()
    from recbole_mdsrec.cli.run import main

    sys.exit(main(sys.argv[1:]))

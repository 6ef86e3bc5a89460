"""``python -m dtcm.cli``: the ``dtcm`` command."""

import sys

from dtcm.cli import main

if __name__ == "__main__":
    sys.exit(main())

"""``python -m dtcm.cli``: the ``dtcm`` command."""

import sys

from dtcm.cli import main

sys.exit(main())

"""``python -m crackal ...``: the command line."""

import sys

from crackal.cli import main

sys.exit(main())

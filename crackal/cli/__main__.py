"""``python -m crackal.cli ...``: the command line."""

import sys

from crackal.cli import main

sys.exit(main())

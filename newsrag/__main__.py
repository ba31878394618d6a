"""`python -m newsrag`: the same as the `newsrag` command."""

import sys

from .cli import main

sys.exit(main())

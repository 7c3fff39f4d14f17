"""`python -m logcaster` is the `logcaster` command."""

import sys

from logcaster.cli import main

sys.exit(main())

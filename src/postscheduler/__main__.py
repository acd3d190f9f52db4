"""``python -m postscheduler``."""

import sys

from postscheduler.cli import main

sys.exit(main())

"""``python -m postscheduler.sandbox``: see :mod:`postscheduler.sandbox.process`."""

import sys

from postscheduler.sandbox.process import main

sys.exit(main())

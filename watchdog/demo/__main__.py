"""``python -m watchdog.demo``: see :mod:`watchdog.demo.run`."""

import sys

from watchdog.demo.run import main

sys.exit(main())

"""``python -m cortex_ep.cli`` is the ``cortex-ep`` command."""

import sys

from .main import main

sys.exit(main())

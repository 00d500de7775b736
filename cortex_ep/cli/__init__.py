"""The ``cortex-ep`` command, one module per subcommand.

- :mod:`~cortex_ep.cli.main` — the parser, the dispatch and :func:`main`;
- :mod:`~cortex_ep.cli.train` — ``cortex-ep train``;
- :mod:`~cortex_ep.cli.gradcheck` — ``cortex-ep gradcheck``;
- :mod:`~cortex_ep.cli.data` — ``cortex-ep data fetch``;
- :mod:`~cortex_ep.cli.run` — ``cortex-ep plot`` and ``cortex-ep info``;
- :mod:`~cortex_ep.cli.messages` — usage errors, help text, exit statuses.
"""

from .main import main

__all__ = ["main"]

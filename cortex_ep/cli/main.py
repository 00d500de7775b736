"""The ``cortex-ep`` command.

``cortex-ep train`` trains a network by EP (Brian2 engine by default) on the
embedded MNIST subset or full MNIST and writes ``history.nc``, ``weights.nc``,
``checkpoint.nc`` and, with ``--record``, ``traces/`` and ``weights/`` per
recorded epoch to ``--out``; ``--resume DIR`` continues a run.
``cortex-ep gradcheck`` compares EP's estimate with the exact gradient.
``cortex-ep plot RUN`` draws a run's figures; ``cortex-ep info RUN`` summarises it.
"""

from __future__ import annotations

import argparse
import os
import sys

from .. import __version__
from .messages import BROKEN_PIPE, INTERRUPTED, UsageError, plain_text


def _parser() -> argparse.ArgumentParser:
    from .data import add_data_parser
    from .gradcheck import add_gradcheck_parser
    from .run import add_parsers as add_run_parsers
    from .train import add_train_parser

    parser = argparse.ArgumentParser(prog="cortex-ep",
                                     description=plain_text(__doc__.split("\n\n")[0]))
    parser.add_argument("--version", action="version", version=f"cortex-ep {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    add_train_parser(sub)
    add_gradcheck_parser(sub)
    add_data_parser(sub)
    add_run_parsers(sub)
    return parser


def _dispatch(args, argv) -> int:
    if args.command == "train" and args.resume is not None:
        from .train import restore_resumed_options

        restore_resumed_options(args, sys.argv[1:] if argv is None else argv)
    if args.command == "data":
        from .data import cmd_data

        return cmd_data(args)
    if args.command == "gradcheck":
        from .gradcheck import cmd_gradcheck

        return cmd_gradcheck(args)
    if args.command in ("plot", "info", "export"):
        from .run import run_command

        return run_command(args)
    from .train import cmd_train

    return cmd_train(args)


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        status = _dispatch(args, argv)
        sys.stdout.flush()  # a reader that left shows here, not as a traceback at exit
        return status
    except UsageError as err:
        parser.exit(2, f"cortex-ep: error: {err}\n")
    except KeyboardInterrupt:  # before training started, or in another command
        print("\ncortex-ep: interrupted; nothing was written", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:  # `cortex-ep info RUN | head`: the reader left early
        # flushing stdout at exit would raise again; send what is left nowhere
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return BROKEN_PIPE

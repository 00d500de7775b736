"""What the ``cortex-ep`` command tells its user beyond results: usage errors,
plain-text help with one default per option, the check of ``--seed``, and the
one line after Ctrl-C."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


class UsageError(Exception):
    """Bad input found before any work: printed and the command exits 2."""


class HelpFormatter(argparse.HelpFormatter):
    """Adds ``(default: X)`` to an option's help once, and only when it says something.

    An option whose help already explains its default (``default:`` or
    ``unset:`` in the text), whose default is None (it comes from the model),
    or that is a flag, keeps its help as written; a list default is shown as
    the values one would type.

    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="demo", formatter_class=HelpFormatter)
    >>> _ = parser.add_argument("--batch", type=int, default=20, help="digits per batch")
    >>> _ = parser.add_argument("--size", type=int, default=None, help="subset (default: all)")
    >>> _ = parser.add_argument("--est", nargs="+", default=["a", "b"], help="estimators")
    >>> for line in parser.format_help().splitlines()[-3:]:
    ...     print(" ".join(line.split()))
    --batch BATCH digits per batch (default: 20)
    --size SIZE subset (default: all)
    --est EST [EST ...] estimators (default: a b)
    """

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (default is None or default is argparse.SUPPRESS or isinstance(default, bool)
                or "default" in text or "unset" in text or not action.option_strings):
            return text
        if isinstance(default, (list, tuple)):
            shown = " ".join(str(v) for v in default)
        else:
            shown = "%(default)s"
        return f"{text} (default: {shown})" if text else f"default: {shown}"


def plain_text(docstring: str) -> str:
    """A docstring's text without reST markup (``code``, :role:`target`), for --help.

    >>> plain_text("The ``cortex-ep`` command; see :func:`~cortex_ep.learning.loop.train`.")
    'The cortex-ep command; see cortex_ep.learning.loop.train.'
    """
    import re

    text = re.sub(r":[a-z:]+:`~?([^`]+)`", r"\1", docstring)
    return " ".join(text.replace("``", "").split())


def seed(text: str) -> int:
    """argparse type of --seed: an integer >= 0 (numpy's generators take no other)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative; a seed is an integer >= 0")
    return value


#: exit status after Ctrl-C (128 + SIGINT), as a shell reports it
INTERRUPTED = 130
#: exit status when the reader of stdout has gone (128 + SIGPIPE), as ``head`` leaves it
BROKEN_PIPE = 141


def interrupted(out: Path, progress: bool) -> int:
    """One line after Ctrl-C during training: the last finished epoch and how to go on."""
    from ..learning import checkpoint

    try:
        epoch = checkpoint.load(out).epoch if out.exists() else 0
    except checkpoint.CheckpointError:
        epoch = 0
    lead = "\n" if progress else ""  # below the progress bar
    if epoch:
        print(f"{lead}cortex-ep: interrupted; epoch {epoch} was the last to finish and its "
              f"checkpoint is intact; continue with: cortex-ep train --resume {out}",
              file=sys.stderr)
    else:
        print(f"{lead}cortex-ep: interrupted before the first epoch finished; no checkpoint "
              "was written", file=sys.stderr)
    return INTERRUPTED

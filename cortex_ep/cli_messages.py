"""What the ``cortex-ep`` command tells its user beyond results: plain-text help,
the check of ``--seed``, and the one line after Ctrl-C."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def plain_text(docstring: str) -> str:
    """A docstring's text without reST markup (``code``, :role:`target`), for --help.

    >>> plain_text("The ``cortex-ep`` command; see :func:`~cortex_ep.train.train`.")
    'The cortex-ep command; see cortex_ep.train.train.'
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
    from . import checkpoint

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

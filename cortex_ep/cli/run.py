"""``cortex-ep plot RUN``, ``cortex-ep info RUN`` and ``cortex-ep export RUN``: look at
a finished (or interrupted) training run without writing code, or hand its recordings
to the field's tools (NWB)."""

from __future__ import annotations

import json
from pathlib import Path

from .messages import HelpFormatter, UsageError

#: the subcommands this module adds to ``cortex-ep``
COMMANDS = ("plot", "info", "export")


def add_parsers(sub) -> None:
    """Register ``plot`` and ``info`` on the subparsers of ``cortex-ep``."""
    p = sub.add_parser("plot", help="draw a run's figures into RUN/figures/",
                       description="Draw the learning curves, the free and nudged "
                                   "trajectories of the probe digits (when traces were "
                                   "recorded) and the first hidden population's receptive "
                                   "fields as PNGs into RUN/figures/.",
                       formatter_class=HelpFormatter)
    p.add_argument("run", type=Path, metavar="RUN", help="a cortex-ep train --out directory")
    p.add_argument("--out", type=Path, default=None,
                   help="directory for the PNGs (default: RUN/figures)")
    i = sub.add_parser("info", help="print a run's settings, epochs, accuracy and time",
                       description="Print a run's settings, its finished epochs, the best "
                                   "and last held-out accuracy, and the training time.")
    i.add_argument("run", type=Path, metavar="RUN", help="a cortex-ep train --out directory")
    e = sub.add_parser("export", help="write a run's recordings as an NWB file",
                       description="Write a recorded run (cortex-ep train --record N) as one "
                                   "NWB file: settings, a trials table with the phases as "
                                   "intervals, state traces per population, spikes of "
                                   "spiking runs in the Units table, and the final weights. "
                                   "Needs the optional extra: pip install 'cortex-ep[nwb]'.",
                       formatter_class=HelpFormatter)
    e.add_argument("run", type=Path, metavar="RUN", help="a cortex-ep train --out directory "
                                                         "with recordings")
    e.add_argument("--nwb", type=Path, required=True, metavar="FILE.nwb",
                   help="the NWB file to write")
    e.add_argument("--force", action="store_true", help="replace an existing FILE.nwb")
    e.add_argument("--spikes", action="store_true",
                   help="require spikes (refuse a rate run); spiking runs' spikes are "
                        "written either way")


def _open(path: Path):
    from ..recordings.run import open_run

    try:
        return open_run(path)
    except FileNotFoundError as err:
        raise UsageError(str(err)) from None


def cmd_plot(args) -> int:
    from ..recordings.figures import write_run_figures

    run = _open(args.run)
    try:
        written = write_run_figures(run, args.out)
    except ValueError as err:
        raise UsageError(str(err)) from None
    for path in written:
        print(f"written: {path}")
    return 0


def run_summary(run) -> str:
    """The text of ``cortex-ep info``: settings, epochs, accuracy and time.

    Parameters
    ----------
    run : cortex_ep.recordings.run.Run
    """
    attrs, history = run.attrs, run.history
    test, train = history.test_accuracy.values, history.train_accuracy.values
    epochs = history.epoch.values
    best = int(test.argmax())
    seconds = float(history.seconds.sum())
    planned = attrs.get("epochs")
    finished = f"{len(epochs)}" + (f" of {int(planned)}" if planned is not None else "")
    lines = [
        f"run: {run.path}",
        f"network: {attrs.get('network_name', '?')} {attrs.get('network', '')} "
        f"(model {attrs.get('model', '?')})",
        f"engine: {attrs.get('engine', '?')}"
        + (f" / {attrs.get('target')}" if attrs.get("engine") == "brian" else ""),
        f"data: {attrs.get('data', '?')} ({attrs.get('train_size', '?')} training / "
        f"{attrs.get('test_size', '?')} held-out digits)",
        f"epochs finished: {finished}",
        f"held-out accuracy: last {100 * test[-1]:.1f}% (epoch {int(epochs[-1])}), "
        f"best {100 * test[best]:.1f}% (epoch {int(epochs[best])})",
        f"training accuracy: last {100 * train[-1]:.1f}%",
        f"time: {seconds:.1f} s ({seconds / len(epochs):.1f} s per epoch)",
    ]
    if run.traces is not None:
        recorded = ", ".join(str(int(e)) for e in run.traces.epoch.values)
        lines.append(f"traces: {run.traces.sizes['sample']} probe digits, recorded after "
                     f"epochs {recorded} (0 = before learning)")
    lines.append("settings:")
    settings = {k: v for k, v in attrs.items() if k != "cli_args"}
    for key in sorted(settings):
        value = settings[key]
        text = " / ".join(f"{v:g}" for v in value) if hasattr(value, "__len__") and \
            not isinstance(value, str) else str(value)
        lines.append(f"  {key}: {text}")
    options = json.loads(str(attrs.get("cli_args", "{}")))
    if options:
        lines.append("options: " + " ".join(_option(k, v) for k, v in sorted(options.items())
                                             if v is not None and v is not False))
    return "\n".join(lines)


def _option(name: str, value) -> str:
    flag = f"--{name.replace('_', '-')}"
    if value is True:
        return flag
    return f"{flag} {' '.join(map(str, value)) if isinstance(value, list) else value}"


def cmd_info(args) -> int:
    print(run_summary(_open(args.run)))
    return 0


def cmd_export(args) -> int:
    from ..recordings.nwb import ExportError, export_nwb

    try:
        path = export_nwb(args.run, args.nwb, force=args.force, spikes=args.spikes)
    except ExportError as err:
        raise UsageError(str(err)) from None
    print(f"written: {path}")
    return 0


def run_command(args) -> int:
    """Dispatch ``plot``, ``info`` or ``export``."""
    return {"plot": cmd_plot, "info": cmd_info, "export": cmd_export}[args.command](args)

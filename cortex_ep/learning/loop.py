"""The learning loop shared by the engines.

An *engine* is any object with

``epoch(W, b, x_train, d_train, signs, batch_size, x_test)``
    -> ``(W, b, train_output, test_output)``: learn from the training samples
    in the given order (consecutive minibatches), then return the free-phase
    outputs of the held-out samples;
``record(W, b, x, d, signs)``
    -> ``{population: (n, steps_per_sample, N)}``: the state after every Euler
    step, without learning;
``get_state()`` / ``set_state(state)``
    the engine's own random state (noise) as a JSON-able dict, for checkpoints.

The loop draws the sample order and the β signs itself, so every engine given
the same seed sees the same sequence.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import xarray as xr

from .. import io
from ..data import Digits, one_hot, stratified_indices
from ..data.augment import check_shift, random_shifts
from ..engines.registry import (
    ENERGY_ENGINES,
    ENGINES,
    EP_ENGINES,
    SPIKING_CONTINUAL,
    SPIKING_ENGINES,
    make_engine,
)
from ..model import energy
from ..model.estimators import Estimator
from ..model.neurons import Spiking
from ..model.plasticity import Plasticity
from ..model.relaxation import Relaxation
from ..model.spec import Network
from ..recordings import traces
from . import checkpoint, health
from .weights import params_from_weights, weights_dataset


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run besides the network and the data.

    Parameters
    ----------
    epochs : int
    batch_size : int
        Samples per weight update (the update is the batch average).
    seed : int
        Seeds the initial weights, the sample order, the β signs and the noise.
    estimator : Estimator
    relaxation : Relaxation
    engine : {"brian", "torch", "numpy", "rbp", "backprop"}
        ``brian`` and ``torch`` run EP (Brian2, the torch twin), ``numpy`` the
        EP reference; ``rbp`` trains the same energy-based network with the
        exact gradient (BPTT through the free phase); ``backprop`` a
        feedforward network of the same populations.
    target : str
        Brian2 code-generation target (``cpp_standalone``, ``cython``, ``numpy``).
    device, dtype : str
        Torch device and float type for ``torch``, ``rbp`` and ``backprop``.
    bp_activation, bp_loss : str
        Hidden activation and loss of the ``backprop`` baseline.
    plasticity : {"phase", "continual"}
        When the EP engines' synapses change (:mod:`cortex_ep.model.plasticity`):
        once per sample from the ends of two phases, or at every step of the
        nudged phase.
    spiking : Spiking, optional
        Spiking neurons (:mod:`cortex_ep.model.neurons`; the Brian2 engine, and the
        torch twin under the phase rule); the run
        then uses their ``dt`` and phase lengths.  None: rate neurons.
    shift : int
        Translate every training digit by up to ``shift`` pixels in each
        direction, a new draw per epoch (:mod:`cortex_ep.data.augment`); 0: none.
    """

    epochs: int = 10
    batch_size: int = 20
    seed: int = 0
    estimator: Estimator = field(default_factory=Estimator)
    relaxation: Relaxation = field(default_factory=Relaxation)
    engine: str = "brian"
    target: str = "cpp_standalone"
    device: str = "cpu"
    dtype: str = "float32"
    bp_activation: str = "logistic"
    bp_loss: str = "cross_entropy"
    plasticity: str = "phase"
    spiking: Spiking | None = None
    shift: int = 0

    def __post_init__(self):
        for name in ("epochs", "batch_size"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} = {v!r}: must be a positive integer")
        if self.engine not in ENGINES:
            raise ValueError(f"unknown engine {self.engine!r}; choose one of "
                             f"{', '.join(ENGINES)}")
        from ..engines.brian.targets import TARGETS

        Plasticity(self.plasticity)
        if self.plasticity != "phase" and self.engine not in EP_ENGINES:
            raise ValueError(f"plasticity {self.plasticity!r} is a rule of the EP engines "
                             f"({', '.join(EP_ENGINES)}); {self.engine!r} learns by the "
                             "exact gradient: use --plasticity phase")
        if self.spiking is not None and self.engine not in SPIKING_ENGINES:
            raise ValueError(f"spiking neurons run in the Brian2 engine and the torch twin; "
                             f"{self.engine!r} has rate neurons only: use --engine brian "
                             "or --engine torch")
        if self.spiking is not None and self.engine == "torch" and self.plasticity != "phase":
            raise ValueError(SPIKING_CONTINUAL)
        check_shift(self.shift)
        if self.target not in TARGETS:
            raise ValueError(f"unknown Brian2 target {self.target!r}; choose one of "
                             f"{', '.join(TARGETS)}")

    def attrs(self) -> dict:
        """Flat, netCDF-safe description of the run settings."""
        out = {k: v for k, v in asdict(self).items()
               if k not in ("estimator", "relaxation", "spiking")}
        out.update(estimator=self.estimator.name, beta=float(self.estimator.beta),
                   **asdict(self.relaxation),
                   neurons=self.spiking.name if self.spiking else "rate",
                   **(self.spiking.attrs() if self.spiking else {}))
        return out


def network_attrs(net: Network) -> dict:
    return {"network": net.describe(), "network_name": net.name, "tau_ms": float(net.tau),
            "dt_ms": float(net.dt),
            "learning_rates": np.array([p.lr for p in net.projections], float),
            "projections": " ".join(f"{p.pre}->{p.post}" for p in net.projections),
            "columns": " ".join(f"{p.name}:{p.n_columns}x{p.column_size}"
                                for p in net.dynamic if p.columns),
            "lateral_learning_rates": " ".join(f"{p.name}:{p.lateral_lr:g}"
                                               for p in net.lateral),
            # shared learning keeps the label that runs had before the other modes
            "feedback": " ".join(f"{p.name}:{p.feedback_init}" + (
                "" if p.feedback_learning == "shared" else f":{p.feedback_rule}")
                for p in net.separate)}


def _metrics(net, output, labels):
    target = one_hot(labels, net.output.size)
    loss = float(np.mean(energy.cost(net, {net.output.name: output}, target)))
    accuracy = float(np.mean(output.argmax(axis=1) == labels))
    return loss, accuracy


def run_attrs(net: Network, config: TrainConfig, digits: Digits, extra=None) -> dict:
    """The attributes of a run's files: network, settings and data (a spiking run's in
    its neuron model's time steps, as :func:`train` writes them)."""
    if config.spiking is not None:
        net, relaxation = config.spiking.timed(net, config.relaxation)
        config = replace(config, relaxation=relaxation)
    return {**network_attrs(net), **config.attrs(), "data": digits.source,
            "train_size": len(digits.y_train), "test_size": len(digits.y_test),
            **(extra or {})}


def recording_path(out, kind: str, epoch: int) -> Path:
    """``<out>/<kind>/epoch_NNNN.nc``: ``kind`` is ``traces`` or ``weights``."""
    return Path(out) / kind / f"epoch_{epoch:04d}.nc"


def check_record_epochs(record_epochs, epochs: int) -> tuple[int, ...]:
    """Sorted unique epochs in ``0 … epochs`` (0: before learning)."""
    chosen = sorted({int(e) for e in record_epochs})
    bad = [e for e in chosen if e < 0 or e > epochs]
    if bad:
        raise ValueError(f"--record-epochs {bad[0]}: choose epochs between 0 (before "
                         f"learning) and {epochs}")
    return tuple(chosen)


def train(net: Network, digits: Digits, config: TrainConfig, out: Path | None = None,
          record: int = 0, progress: bool = True, extra_attrs: dict | None = None,
          engine=None, record_epochs=None, resume: bool = False,
          on_divergence: str = "stop", settle_tol: float = health.SETTLE_TOL):
    """Train ``net`` on ``digits`` and return the history Dataset.

    With ``out``, every epoch ends by writing (atomically) ``checkpoint.nc``,
    ``history.nc`` and ``weights.nc``.  With ``record`` > 0, the free and
    nudged traces of ``record`` held-out digits (a fixed probe set, balanced
    over classes) are recorded after each epoch of ``record_epochs`` (default:
    the last; 0 = the initial weights) into ``traces/epoch_NNNN.nc``, with
    the weights of that moment in ``weights/epoch_NNNN.nc`` — one file per
    epoch, so memory stays bounded (open them with :func:`cortex_ep.recordings.run.open_run`).

    Parameters
    ----------
    engine : optional, made by :func:`make_engine` beforehand
    resume : bool
        Continue the run in ``out`` from its checkpoint (same settings; more
        epochs allowed).  The result is that of an uninterrupted run.
    on_divergence : {"stop", "warn"}
        After each epoch the weights and the free phase of a probe batch are
        checked (:mod:`cortex_ep.learning.health`).  ``stop`` raises
        :class:`~cortex_ep.learning.health.DivergenceError`, leaving the last good
        checkpoint untouched; ``warn`` warns and goes on.
    settle_tol : float
        Tolerance on max |ds/dt|·τ at the end of the probe's free phase.

    Returns
    -------
    history : xr.Dataset over dim ``epoch`` with ``train_loss``,
        ``train_accuracy``, ``test_loss``, ``test_accuracy``, ``seconds``.
        ``train_*`` are measured on the free phases seen during the epoch.
    W, b : the learned parameters
    """
    from tqdm.auto import tqdm

    if record and config.engine not in ENERGY_ENGINES:
        raise ValueError(f"--record needs an energy-based engine ({', '.join(ENERGY_ENGINES)}); "
                         f"{config.engine!r} has no dynamics to record")
    if record < 0 or record > len(digits.y_test):
        raise ValueError(f"--record {record}: choose between 0 and the "
                         f"{len(digits.y_test)} held-out samples")
    if digits.x_train.shape[1] != net.input.size:
        raise ValueError(f"the data has {digits.x_train.shape[1]} pixels per image but "
                         f"population {net.input.name!r} has {net.input.size} units")
    check_shift(config.shift, net.input.size)
    if on_divergence not in health.ACTIONS:
        raise ValueError(f"on_divergence = {on_divergence!r}; choose one of "
                         f"{', '.join(health.ACTIONS)}")
    record_epochs = check_record_epochs(
        (config.epochs,) if record_epochs is None else record_epochs, config.epochs) \
        if record else ()
    if (resume or record_epochs) and out is None:
        raise ValueError("resuming and recording need an output directory (out)")
    if config.spiking is not None:  # the same network in the spiking model's time steps
        net, relaxation = config.spiking.timed(net, config.relaxation)
        config = replace(config, relaxation=relaxation)
    engine = engine or make_engine(net, config)
    attrs = run_attrs(net, config, digits, extra_attrs)
    # one writer per run directory, from its checkpoint's reading to the last file
    with hold_run_directory(out) if out is not None else contextlib.nullcontext():
        rng = np.random.default_rng(config.seed)
        W, b = energy.init_params(net, config.seed)
        torch_seed(config)
        rows, first = [], 1
        if resume:
            ck = checkpoint.load(out)
            checkpoint.check_compatible(ck, attrs, out)
            W, b = params_from_weights(net, ck.weights)
            rng.bit_generator.state = ck.loop_rng
            engine.set_state(ck.engine_state)
            rows = [tuple(float(ck.history[n].values[i]) for n in checkpoint.HISTORY_VARS)
                    for i in range(ck.epoch)]
            first = ck.epoch + 1
        probe = _probe(digits, record)
        if 0 in record_epochs and first == 1:
            _record(net, engine, config, W, b, probe, 0, out, attrs)
        history = _history(rows, attrs) if rows else None
        bar = tqdm(range(first, config.epochs + 1), desc=f"EP {net.describe()}", unit="epoch",
                   disable=not progress, initial=first - 1, total=config.epochs)
        lrs = " / ".join(f"{p.lr:g}" for p in net.projections)
        dead_units = health.DeadUnitWatch()
        for epoch in bar:
            start = time.perf_counter()
            order = rng.permutation(len(digits.y_train))
            signs = config.estimator.signs(len(order), rng)
            x_train = random_shifts(digits.x_train[order], config.shift, rng)
            W, b, train_out, test_out = engine.epoch(
                W, b, x_train, one_hot(digits.y_train[order], net.output.size),
                signs, config.batch_size, digits.x_test)
            seconds = time.perf_counter() - start
            # a feedforward network can blow up too, but it has no free phase to settle
            settle_x = digits.x_test[:PROBE_SETTLE] if config.engine in ENERGY_ENGINES else None
            problem = health.check_epoch(
                net, W, b, (train_out, test_out), epoch, settle_x, config.relaxation.free_steps,
                config.relaxation.activation, lrs, config.estimator.beta, settle_tol,
                held_out=test_out, watch=dead_units)
            if problem is not None:
                kept = (f"the checkpoint of epoch {epoch - 1} in {out} is intact"
                        if out is not None and epoch > 1 else "no epoch was saved")
                if on_divergence == "stop":
                    raise health.DivergenceError(f"{problem}. Training stopped; {kept}. "
                                                 "(--on-divergence warn goes on instead.)")
                warnings.warn(f"{problem}; going on (--on-divergence warn)", RuntimeWarning,
                              stacklevel=2)
            train_loss, train_acc = _metrics(net, train_out, digits.y_train[order])
            test_loss, test_acc = _metrics(net, test_out, digits.y_test)
            rows.append((train_loss, train_acc, test_loss, test_acc, seconds))
            bar.set_postfix(train=f"{train_acc:.3f}", test=f"{test_acc:.3f}",
                            s=f"{seconds:.1f}")
            history = _history(rows, attrs)
            if out is None:
                continue
            if epoch in record_epochs:
                _record(net, engine, config, W, b, probe, epoch, out, attrs)
            weights = weights_dataset(net, W, b, attrs)
            # the checkpoint is the commit point: history and weights files follow it,
            # and a Ctrl-C waits until all three agree
            with io.interrupts_deferred():
                checkpoint.save(out, checkpoint.Checkpoint(epoch, weights, history,
                                                           rng.bit_generator.state,
                                                           engine.get_state(), attrs))
                io.write_dataset(history, Path(out) / "history.nc")
                io.write_dataset(weights, Path(out) / "weights.nc")
        bar.close()
        return history, W, b


#: what a run refused a directory that another run holds can do
RUN_IN_USE = ("wait for that run to end, or stop it (its last checkpoint stays); to train "
              "beside it, choose another --out")


def run_lock(out) -> Path:
    """The lock file of run directory ``out``."""
    return Path(out) / io.LOCK_NAME


def hold_run_directory(out):
    """Context manager: create ``out`` if needed and hold it as its only writer, or
    raise :class:`~cortex_ep.io.DirectoryInUse` naming the process that holds it."""
    Path(out).mkdir(parents=True, exist_ok=True)
    return io.exclusive(run_lock(out), f"run directory {out}", RUN_IN_USE)


def check_run_directory_free(out) -> None:
    """Raise :class:`~cortex_ep.io.DirectoryInUse` if another process holds ``out``;
    creates nothing."""
    io.check_free(run_lock(out), f"run directory {out}", RUN_IN_USE)


#: held-out digits whose free phase is checked for settling after every epoch
PROBE_SETTLE = 64


def torch_seed(config: TrainConfig) -> None:
    """Seed torch's global generator too, where the engine uses torch."""
    if config.engine in ("torch", "rbp", "backprop"):
        import torch

        torch.manual_seed(config.seed)


def _probe(digits: Digits, n: int):
    """The fixed probe set of ``n`` held-out digits recorded during learning."""
    if not n:
        return None
    ids = stratified_indices(digits.y_test, n)
    return ids, digits.x_test[ids], digits.y_test[ids]


def _record(net, engine, config, W, b, probe, epoch: int, out, attrs) -> None:
    ids, x, y = probe
    ds = record_traces(net, engine, config, W, b, x, y, ids, attrs)
    ds = ds.assign_coords(epoch=epoch)
    io.write_dataset(ds, _mkparent(recording_path(out, "traces", epoch)), compress=True)
    io.write_dataset(weights_dataset(net, W, b, attrs).assign_coords(epoch=epoch),
                     _mkparent(recording_path(out, "weights", epoch)))


def _mkparent(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def record_traces(net, engine, config, W, b, x, y, sample_ids, attrs=None) -> xr.Dataset:
    """Free and nudged traces of inputs ``x`` with labels ``y`` (no learning)."""
    signs = np.ones(len(y))  # recordings nudge toward the target
    states = engine.record(W, b, x, one_hot(y, net.output.size), signs)
    rel, rule = config.relaxation, Plasticity(config.plasticity)
    phases = rule.phases(config.estimator)
    trace = traces.phase_traces(states, net, rel.free_steps, rel.nudged_steps, phases,
                                rule.continual)
    ds = traces.traces_dataset(net, trace, phases, x, y, rel.activation, sample_ids,
                               attrs={**network_attrs(net), **config.attrs(), **(attrs or {})})
    if config.spiking is not None:
        ds = ds.merge(traces.spike_variables(states, net, rel.free_steps, rel.nudged_steps,
                                             phases, ds.sample.values))
    return ds


def _history(rows, attrs) -> xr.Dataset:
    arr = np.array(rows, dtype=float)
    names = ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "seconds")
    units = ("1", "1", "1", "1", "s")
    return xr.Dataset(
        {n: ("epoch", arr[:, i], {"units": u}) for i, (n, u) in enumerate(zip(names, units))},
        coords={"epoch": np.arange(1, len(rows) + 1)},
        attrs=attrs)

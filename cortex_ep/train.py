"""The learning loop shared by the engines.

An *engine* is any object with

``epoch(W, b, x_train, d_train, signs, batch_size, x_test)``
    -> ``(W, b, train_output, test_output)``: learn from the training samples
    in the given order (consecutive minibatches), then return the free-phase
    outputs of the held-out samples;
``record(W, b, x, d, signs)``
    -> ``{population: (n, steps_per_sample, N)}``: the state after every Euler
    step, without learning.

The loop draws the sample order and the β signs itself, so every engine given
the same seed sees the same sequence.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from . import energy, io, traces
from .data import Digits, one_hot, stratified_indices
from .estimators import Estimator
from .reference import ReferenceEngine, Relaxation
from .spec import Network

ENGINES = ("brian", "torch", "numpy", "rbp", "backprop")
#: hidden activations and losses of the feedforward backprop baseline
BP_ACTIVATIONS = ("hard_sigmoid", "logistic", "relu", "tanh")
BP_LOSSES = ("cross_entropy", "mse")
#: engines whose networks have EP's dynamics (they can record traces)
ENERGY_ENGINES = ("brian", "torch", "numpy", "rbp")


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

    def __post_init__(self):
        for name in ("epochs", "batch_size"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} = {v!r}: must be a positive integer")
        if self.engine not in ENGINES:
            raise ValueError(f"unknown engine {self.engine!r}; choose one of "
                             f"{', '.join(ENGINES)}")
        from .brian.targets import TARGETS

        if self.target not in TARGETS:
            raise ValueError(f"unknown Brian2 target {self.target!r}; choose one of "
                             f"{', '.join(TARGETS)}")

    def attrs(self) -> dict:
        """Flat, netCDF-safe description of the run settings."""
        out = {k: v for k, v in asdict(self).items() if k not in ("estimator", "relaxation")}
        out.update(estimator=self.estimator.name, beta=float(self.estimator.beta),
                   **asdict(self.relaxation))
        return out


def make_engine(net: Network, config: TrainConfig):
    """The engine object for ``config.engine`` (imports torch only when needed)."""
    est, rel, seed = config.estimator, config.relaxation, config.seed
    if config.engine == "numpy":
        return ReferenceEngine(net, est, rel, seed)
    if config.engine == "brian":
        from .brian.engine import BrianEngine

        return BrianEngine(net, est, rel, target=config.target, seed=seed)
    torch_kw = dict(device=config.device, dtype=config.dtype, seed=seed)
    if config.engine == "torch":
        from .twin.engine import TorchEngine

        return TorchEngine(net, est, rel, **torch_kw)
    from .twin.backprop import FeedforwardEngine, RecurrentBackpropEngine

    if config.engine == "rbp":
        return RecurrentBackpropEngine(net, est, rel, **torch_kw)
    return FeedforwardEngine(net, config.bp_activation, config.bp_loss, **torch_kw)


def network_attrs(net: Network) -> dict:
    return {"network": net.describe(), "network_name": net.name, "tau_ms": float(net.tau),
            "dt_ms": float(net.dt),
            "learning_rates": np.array([p.lr for p in net.projections], float),
            "projections": " ".join(f"{p.pre}->{p.post}" for p in net.projections)}


def weights_dataset(net: Network, W: dict, b: dict, attrs=None) -> xr.Dataset:
    """Weights ``W_<pre>_<post>`` (dims ``<pre>_unit``, ``<post>_unit``) and biases ``b_<pop>``."""
    data = {f"W_{p.name}": ((f"{p.pre}_unit", f"{p.post}_unit"), W[p.name])
            for p in net.projections}
    data.update({f"b_{pop.name}": (f"{pop.name}_unit", b[pop.name]) for pop in net.dynamic})
    return xr.Dataset(data, attrs={"units": "1", **(attrs or {})})


def params_from_weights(net: Network, ds: xr.Dataset):
    """Inverse of :func:`weights_dataset`."""
    W = {p.name: ds[f"W_{p.name}"].values.copy() for p in net.projections}
    b = {pop.name: ds[f"b_{pop.name}"].values.copy() for pop in net.dynamic}
    return W, b


def _metrics(net, output, labels):
    target = one_hot(labels, net.output.size)
    loss = float(np.mean(energy.cost(net, {net.output.name: output}, target)))
    accuracy = float(np.mean(output.argmax(axis=1) == labels))
    return loss, accuracy


def train(net: Network, digits: Digits, config: TrainConfig, out: Path | None = None,
          record: int = 0, progress: bool = True, extra_attrs: dict | None = None,
          engine=None):
    """Train ``net`` on ``digits`` and return the history Dataset.

    With ``out``, writes after every epoch ``history.nc`` and ``weights.nc``
    (atomically), and ``traces.nc`` of ``record`` held-out samples at the end.
    ``engine`` may be given ready-made (from :func:`make_engine`).

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
    engine = engine or make_engine(net, config)
    torch_seed(config)
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(config.seed)
    W, b = energy.init_params(net, config.seed)
    attrs = {**network_attrs(net), **config.attrs(), "data": digits.source,
             "train_size": len(digits.y_train), "test_size": len(digits.y_test),
             **(extra_attrs or {})}
    rows = []
    bar = tqdm(range(1, config.epochs + 1), desc=f"EP {net.describe()}", unit="epoch",
               disable=not progress)
    for epoch in bar:
        start = time.perf_counter()
        order = rng.permutation(len(digits.y_train))
        signs = config.estimator.signs(len(order), rng)
        W, b, train_out, test_out = engine.epoch(
            W, b, digits.x_train[order], one_hot(digits.y_train[order], net.output.size),
            signs, config.batch_size, digits.x_test)
        seconds = time.perf_counter() - start
        train_loss, train_acc = _metrics(net, train_out, digits.y_train[order])
        test_loss, test_acc = _metrics(net, test_out, digits.y_test)
        rows.append((train_loss, train_acc, test_loss, test_acc, seconds))
        bar.set_postfix(train=f"{train_acc:.3f}", test=f"{test_acc:.3f}",
                        s=f"{seconds:.1f}")
        history = _history(rows, attrs)
        if out is not None:
            io.write_dataset(history, Path(out) / "history.nc")
            io.write_dataset(weights_dataset(net, W, b, attrs), Path(out) / "weights.nc")
    bar.close()
    if record and out is not None:
        ds = record_traces(net, engine, config, W, b, digits, record)
        io.write_dataset(ds, Path(out) / "traces.nc")
    return history, W, b


def torch_seed(config: TrainConfig) -> None:
    """Seed torch's global generator too, where the engine uses torch."""
    if config.engine in ("torch", "rbp", "backprop"):
        import torch

        torch.manual_seed(config.seed)


def record_traces(net, engine, config, W, b, digits: Digits, n: int) -> xr.Dataset:
    """Free and nudged traces of ``n`` held-out samples, balanced across digits."""
    ids = stratified_indices(digits.y_test, n)
    x, y = digits.x_test[ids], digits.y_test[ids]
    signs = np.ones(n)  # recordings nudge toward the target
    states = engine.record(W, b, x, one_hot(y, net.output.size), signs)
    rel = config.relaxation
    trace = traces.phase_traces(states, net, rel.free_steps, rel.nudged_steps,
                                config.estimator.phases)
    return traces.traces_dataset(net, trace, config.estimator.phases, x, y,
                                 rel.activation, ids,
                                 attrs={**network_attrs(net), **config.attrs()})


def _history(rows, attrs) -> xr.Dataset:
    arr = np.array(rows, dtype=float)
    names = ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "seconds")
    units = ("1", "1", "1", "1", "s")
    return xr.Dataset(
        {n: ("epoch", arr[:, i], {"units": u}) for i, (n, u) in enumerate(zip(names, units))},
        coords={"epoch": np.arange(1, len(rows) + 1)},
        attrs=attrs)

"""The backprop baselines, behind the same engine protocol as EP.

``FeedforwardEngine``
    A feedforward network with the spec's populations and projections
    (what a user would pick instead of EP), trained by autograd with SGD and
    the projections' learning rates; lateral weights are not used.
    Activation and loss are the user's choice: the hard sigmoid kills the
    gradient of saturated units.
``RecurrentBackpropEngine``
    The same energy-based network as EP, relaxed by the same free phase, but
    trained with the exact gradient of C(s⁰) by implicit differentiation
    (:func:`cortex_ep.engines.twin.truth.implicit_gradient`): the gradient EP
    approximates, so a race between the two isolates the estimator.
"""

from __future__ import annotations

import torch

from ...model.dynamics import Relaxed, relax, zero_state
from ...model.spec import Network
from .backprop_options import BP_ACTIVATIONS, BP_LOSSES
from .engine import TorchEngine
from .relax import resolve_device, resolve_dtype, to_numpy, to_tensors
from .truth import bptt_gradient, implicit_gradient

FF_ACTIVATIONS = {
    "hard_sigmoid": lambda z: z.clamp(0.0, 1.0),
    "logistic": torch.sigmoid,
    "relu": torch.relu,
    "tanh": torch.tanh,
}
FF_LOSSES = BP_LOSSES
assert tuple(FF_ACTIVATIONS) == BP_ACTIVATIONS


class FeedforwardEngine:
    """A feedforward network trained by backprop (autograd, plain SGD).

    Parameters
    ----------
    net : Network
        Populations and projections; the output population gives the logits
        (``cross_entropy``) or, through the activation, the prediction (``mse``).
    activation : {"hard_sigmoid", "logistic", "relu", "tanh"}
        Of the hidden populations.
    loss : {"cross_entropy", "mse"}
    """

    def __init__(self, net: Network, activation: str = "logistic",
                 loss: str = "cross_entropy", device: str = "cpu", dtype: str = "float32",
                 seed: int = 0):
        if activation not in FF_ACTIVATIONS:
            raise ValueError(f"unknown backprop activation {activation!r}; choose one of "
                             f"{', '.join(FF_ACTIVATIONS)}")
        if loss not in FF_LOSSES:
            raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(FF_LOSSES)}")
        self.net, self.loss = net, loss
        self.act = FF_ACTIVATIONS[activation]
        self.device, self.dtype = resolve_device(device), resolve_dtype(dtype)

    def get_state(self) -> dict:
        return {}  # plain SGD on a fixed sample order: nothing random of its own

    def set_state(self, state: dict) -> None:
        pass

    def forward(self, W, b, x) -> torch.Tensor:
        """Logits (cross-entropy) or predictions (mse), shape (batch, N_out)."""
        net = self.net
        s = {net.input.name: x}
        for name in net.order[1:]:
            z = b[name] + sum(s[p.pre] @ W[p.name] for p in net.projections if p.post == name)
            s[name] = z if (name == net.output.name and self.loss == "cross_entropy") \
                else self.act(z)
        return s[net.output.name]

    def predictions(self, out: torch.Tensor) -> torch.Tensor:
        """Outputs comparable with EP's (in [0, 1]): softmax or the activation."""
        return out.softmax(-1) if self.loss == "cross_entropy" else out

    def _loss(self, out, d):
        if self.loss == "cross_entropy":
            return torch.nn.functional.cross_entropy(out, d.argmax(-1))
        return 0.5 * ((out - d) ** 2).sum(-1).mean()

    def epoch(self, W, b, x_train, d_train, signs, batch_size, x_test):
        lr = {**{p.name: p.lr for p in self.net.projections},
              **{p.name: self.net.bias_lr(p.name) for p in self.net.dynamic}}
        Wt = {k: v.requires_grad_(True) for k, v in to_tensors(W, self.device, self.dtype).items()}
        bt = {k: v.requires_grad_(True) for k, v in to_tensors(b, self.device, self.dtype).items()}
        x = torch.as_tensor(x_train, device=self.device, dtype=self.dtype)
        d = torch.as_tensor(d_train, device=self.device, dtype=self.dtype)
        outputs = []
        # lateral weights have no place in a feedforward pass: they stay as they are
        params = [(Wt, p.name) for p in self.net.projections] + [(bt, k) for k in bt]
        for start in range(0, len(x), batch_size):
            out = self.forward(Wt, bt, x[start:start + batch_size])
            loss = self._loss(out, d[start:start + batch_size])
            grads = torch.autograd.grad(loss, [store[k] for store, k in params])
            with torch.no_grad():
                for (store, k), g in zip(params, grads):
                    store[k].sub_(g, alpha=lr[k])
            outputs.append(self.predictions(out.detach()))
        with torch.no_grad():
            xt = torch.as_tensor(x_test, device=self.device, dtype=self.dtype)
            test = self.predictions(self.forward(Wt, bt, xt))
        return (to_numpy(Wt), to_numpy(bt), torch.cat(outputs).cpu().numpy(),
                test.cpu().numpy())

    def record(self, W, b, x, d, signs):
        raise ValueError("a feedforward network has no dynamics to record; use an "
                         "energy-based engine (brian, torch, rbp) with --record")


class RecurrentBackpropEngine(TorchEngine):
    """The energy-based network trained with the exact gradient of its loss.

    The free phase is EP's (``relaxation.free_steps`` steps from rest).  With
    ``gradient="bptt"`` (default) the update is the exact gradient of the
    loss at the state those steps reach, by backpropagation through time;
    with ``"implicit"`` it is implicit differentiation, exact only once the
    free phase has converged (:func:`cortex_ep.engines.twin.truth.implicit_gradient`).
    The estimator is only used by :meth:`record`.
    """

    GRADIENTS = ("bptt", "implicit")

    def __init__(self, *args, gradient: str = "bptt", **kwargs):
        super().__init__(*args, **kwargs)
        if gradient not in self.GRADIENTS:
            raise ValueError(f"unknown gradient {gradient!r}; choose one of "
                             f"{', '.join(self.GRADIENTS)}")
        self.gradient = gradient

    def _gradient(self, x, d, W, b):
        rel = self.relaxation
        if self.gradient == "bptt":
            return bptt_gradient(self.net, x, d, W, b, rel.free_steps, rel.activation)
        s0 = relax(self.net, zero_state(self.net, x), W, b, rel.free_steps,
                   activation=rel.activation)
        return implicit_gradient(self.net, x, d, W, b, rel.activation,
                                 fixed_point=Relaxed(s0, rel.free_steps, float("nan")),
                                 cg_tol=1e-6, cg_max_iter=500)

    @torch.no_grad()
    def epoch(self, W, b, x_train, d_train, signs, batch_size, x_test):
        W, b = to_tensors(W, self.device, self.dtype), to_tensors(b, self.device, self.dtype)
        x_all, d_all = self.tensor(x_train), self.tensor(d_train)
        outputs = []
        for start in range(0, len(x_all), batch_size):
            x, d = x_all[start:start + batch_size], d_all[start:start + batch_size]
            g = self._gradient(x, d, W, b)
            for name in W:
                W[name].sub_(g.W[name], alpha=self.lr[name])
            for name in b:
                b[name].sub_(g.b[name], alpha=self.lr_bias[name])
            outputs.append(g.output)
        test = self.predict(W, b, x_test)
        return to_numpy(W), to_numpy(b), torch.cat(outputs).cpu().numpy(), test.cpu().numpy()

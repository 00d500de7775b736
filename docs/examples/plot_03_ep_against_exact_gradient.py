"""
EP against the exact gradient
=============================

EP estimates the gradient of the loss L = mean C(s⁰) from two phases. Here
the estimate of a fresh 784-50-10 network on a batch of 10 digits is compared
with the exact gradient (implicit differentiation at the free fixed point)
for β from 1e-4 to 0.3, with the one-sided and the symmetric estimator. The
theory says the error of the one-sided estimate falls like β and that of the
symmetric one like β², until units start crossing a kink of the hard sigmoid.
"""

import matplotlib.pyplot as plt
import numpy as np

from cortex_ep import data, layered
from cortex_ep.gradients import gradcheck
from cortex_ep.model import energy

net = layered([784, 50, 10], [0.1, 0.05], tau=10.0, dt=5.0, name="gradcheck")
W, b = energy.init_params(net, seed=0)
digits = data.load(train_size=100, test_size=10, seed=0)
idx = data.stratified_indices(digits.y_train, 10, seed=0)
x, d = digits.x_train[idx], data.one_hot(digits.y_train[idx], 10)

betas = np.logspace(-4, np.log10(0.3), 8)
ds = gradcheck.gradcheck(net, x, d, W, b, betas, ("one-sided", "symmetric"),
                         precision="float64")
print("parameters:", list(ds.param.values))
print(ds.rel_error.isel(repeat=0).sel(param="W_h1_y").to_pandas())

# %%
# The relative error ‖ĝ − g‖/‖g‖ of each weight matrix against β, on log-log
# axes: slopes 1 and 2 where the theory holds.
fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharey=True, constrained_layout=True)
weights = [p for p in ds.param.values if str(p).startswith("W_")]
for ax, param in zip(axes, weights):
    for estimator, marker in (("one-sided", "o-"), ("symmetric", "s-")):
        err = ds.rel_error.sel(param=param, estimator=estimator).isel(repeat=0)
        slope = gradcheck.loglog_slope(betas, err.values, lo=1e-4, hi=1e-3)
        ax.loglog(betas, err, marker, label=f"{estimator} (slope {slope:.2f})")
    ax.set_title(str(param))
    ax.set_xlabel("β")
    ax.legend(fontsize=8)
axes[0].set_ylabel("relative error of the EP estimate")
plt.show()

# %%
# The summary :command:`cortex-ep gradcheck` prints:
print(gradcheck.summarize(ds))

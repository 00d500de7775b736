"""
Record and plot the free and nudged phases
==========================================

With ``record=N`` training records the state of every unit at every Euler
step of the free and nudged phases of a fixed probe set of N held-out digits,
after the chosen epochs (0 = before learning). :func:`cortex_ep.recordings.run.open_run`
opens the run directory with every recorded epoch along an ``epoch``
dimension; times are in ms from the start of each phase.
"""

import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from cortex_ep import (Estimator, Relaxation, TrainConfig, layered, load_digits, open_run,
                       train)

net = layered([784, 100, 10], [0.2, 0.05], tau=10.0, dt=5.0, name="traces")
digits = load_digits(train_size=600, test_size=200, seed=0)
config = TrainConfig(epochs=3, engine="torch", estimator=Estimator("one-sided", 0.5),
                     relaxation=Relaxation(free_steps=20, nudged_steps=8))
out = Path(tempfile.mkdtemp()) / "run"
train(net, digits, config, out=out, record=10, record_epochs=(0, 3), progress=False)

run = open_run(out, chunks=False)
traces = run.traces
print(traces.rate.dims, dict(traces.rate.sizes))

# %%
# The output population for one probe digit, before and after learning. The
# free phase starts from rest; the nudged phase starts at the free fixed point
# and pulls the output toward the target (the thick line).
sample = 0
label = int(traces.label[sample])
out_rate = traces.rate.isel(sample=sample).where(traces.layer == "y", drop=True)
free_end = float(traces.time[np.flatnonzero(
    ~np.isnan(out_rate.sel(phase="free", epoch=0).isel(unit=0)))[-1]])

fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True, constrained_layout=True)
for ax, epoch in zip(axes, (0, 3)):
    for unit in range(10):
        target = unit == label
        style = dict(color="black" if target else "tab:grey", lw=2 if target else 0.8)
        free = out_rate.sel(epoch=epoch, phase="free").isel(unit=unit)
        nudged = out_rate.sel(epoch=epoch, phase="nudged").isel(unit=unit)
        ax.plot(traces.time, free, "-", **style)
        ax.plot(free_end + traces.time, nudged, "--", **style)
    ax.axvline(free_end, color="tab:red", lw=0.8)
    ax.set_title(f"epoch {epoch}: digit {label}; solid free, dashed nudged")
    ax.set_xlabel("time (ms)")
axes[0].set_ylabel("output rate ρ(s)")
plt.show()

# %%
# EP's learning signal is the nudged − free difference of the rates. Its mean
# magnitude per population, at the end of the nudged phase, before and after
# learning (the free phase has 20 steps, the nudged one 8; later entries are NaN):
nudged_end = traces.rate.sel(phase="nudged").isel(time=8)
free_fixed = traces.rate.sel(phase="free").isel(time=20)
signal = abs(nudged_end - free_fixed).groupby("layer").mean(("unit", "sample"))
print(signal.to_pandas())

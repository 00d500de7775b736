"""
A column analysis
=================

A hidden population laid out as cortical columns carries a ``column``
coordinate in every recording, and :mod:`cortex_ep.recordings.columns` reduces recorded
traces to per-column quantities. Here 784 → 10 columns × 10 units → 10 is
trained for 3 epochs with the probe digits recorded before learning and after
every epoch; :func:`cortex_ep.recordings.columns.column_metrics` then gives each column's
selectivity for digits and the nudged − free difference (EP's learning
signal) over time.
"""

import tempfile
from pathlib import Path

import matplotlib.pyplot as plt

from cortex_ep import (Estimator, Network, Population, Projection, Relaxation, TrainConfig,
                       load_digits, open_run, train)
from cortex_ep.recordings.columns import column_metrics

net = Network(
    populations=(Population("x", 784, "input"),
                 Population("h1", 100, "hidden", columns=10),
                 Population("y", 10, "output")),
    projections=(Projection("x", "h1", lr=0.2), Projection("h1", "y", lr=0.05)),
    name="columns",
)
digits = load_digits(train_size=600, test_size=200, seed=0)
config = TrainConfig(epochs=3, engine="torch", estimator=Estimator("random-sign", 0.5),
                     relaxation=Relaxation(free_steps=20, nudged_steps=4))
out = Path(tempfile.mkdtemp()) / "run"
train(net, digits, config, out=out, record=50, record_epochs=(0, 1, 2, 3), progress=False)

run = open_run(out, chunks=False)
m = column_metrics(run.traces, run.weight_history, "h1")
print(m.selectivity.mean("column").to_pandas().rename("mean selectivity index"))

# %%
# Left: the selectivity index of each column before learning (epoch 0) and
# after each epoch. Right: the mean absolute nudged − free rate difference of each
# column over the nudged phase, in ms, before and after learning.
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
img = left.imshow(m.selectivity.T, aspect="auto", cmap="viridis", interpolation="nearest")
fig.colorbar(img, ax=left)
left.set_xticks(range(m.sizes["epoch"]), m.epoch.values)
left.set_xlabel("epoch (0 = before learning)")
left.set_ylabel("column")
left.set_title("selectivity index")
for epoch, colour in ((0, "tab:grey"), (3, "tab:red")):
    diff = m.abs_difference.sel(epoch=epoch)
    for column in diff.column.values:
        right.plot(diff.time, diff.sel(column=column), color=colour, lw=0.8,
                   label=f"epoch {epoch}" if column == 0 else None)
right.set_xlabel("time in the nudged phase (ms)")
right.set_ylabel("mean |nudged − free| rate")
right.set_title("EP's learning signal per column")
right.legend()
plt.show()

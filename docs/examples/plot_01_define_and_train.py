"""
Define a network in a script and train it
=========================================

A network is a description: populations (size and role) and the projections
between them, with the time constant τ and the Euler step dt in ms. Here a
784-100-10 network, its hidden population laid out as 10 cortical columns of
10 units, is trained by EP (random-sign estimator, β = 0.5) with the torch twin
on a small stratified subset of the embedded MNIST digits.
"""

import matplotlib.pyplot as plt

from cortex_ep import (Estimator, Network, Population, Projection, Relaxation, TrainConfig,
                       load_digits, train)

net = Network(
    populations=(Population("x", 784, "input"),
                 Population("h", 100, "hidden", columns=10),
                 Population("y", 10, "output")),
    projections=(Projection("x", "h", lr=0.2), Projection("h", "y", lr=0.05)),
    tau=10.0, dt=5.0,  # ms
    name="gallery",
)
print(net.describe(), "| populations:", [p.name for p in net.populations])

# %%
# 600 training and 200 held-out digits, stratified over the ten classes.
digits = load_digits(train_size=600, test_size=200, seed=0)
config = TrainConfig(epochs=4, batch_size=20, seed=0, engine="torch",
                     estimator=Estimator("random-sign", 0.5),
                     relaxation=Relaxation(free_steps=20, nudged_steps=4))
history, W, b = train(net, digits, config, progress=False)
print(history[["train_accuracy", "test_accuracy", "seconds"]].to_dataframe().round(3))

# %%
# ``history`` is an :class:`xarray.Dataset` over ``epoch``; the accuracy is
# that of the free-phase output (the arg-max of the output population at the
# free fixed point).
fig, ax = plt.subplots(figsize=(5, 3.2), constrained_layout=True)
ax.plot(history.epoch, 100 * history.train_accuracy, "o-", label="train")
ax.plot(history.epoch, 100 * history.test_accuracy, "s-", label="held-out")
ax.set_xlabel("epoch")
ax.set_ylabel("accuracy (%)")
ax.set_xticks(history.epoch.values)
ax.legend()
ax.set_title(f"EP, {net.describe()}, {len(digits.y_train)} training digits")
plt.show()

"""784-500-10: the two-layer EP network of Scellier & Bengio on MNIST.

Scellier, B. & Bengio, Y. (2017). Equilibrium Propagation: Bridging the Gap
between Energy-Based Models and Backpropagation. Front. Comput. Neurosci. 11:24.

Hard-sigmoid rate units, τ = 10 ms, dt = 5 ms (dt/τ = 0.5), 20 free and 4
nudged Euler steps, random-sign β = 0.5, learning rates 0.1 (input → hidden)
and 0.05 (hidden → output), minibatches of 20.
"""

from cortex_ep.spec import layered

SIZES = (784, 500, 10)
LEARNING_RATES = (0.1, 0.05)
TAU_MS = 10.0
DT_MS = 5.0

TRAINING = {
    "epochs": 10,
    "batch_size": 20,
    "beta": 0.5,
    "estimator": "random-sign",
    "free_steps": 20,
    "nudged_steps": 4,
}


def network(learning_rates=LEARNING_RATES):
    return layered(SIZES, learning_rates, tau=TAU_MS, dt=DT_MS, name="two_layer")


if __name__ == "__main__":
    import sys

    from cortex_ep.cli import main

    sys.exit(main(["train", "--model", __file__, *sys.argv[1:]]))

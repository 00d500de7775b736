"""784 → 25 columns × 20 units → 10: the two-layer EP network laid out as cortical columns.

Scellier, B. & Bengio, Y. (2017). Equilibrium Propagation: Bridging the Gap
between Energy-Based Models and Backpropagation. Front. Comput. Neurosci. 11:24.
Mountcastle, V. B. (1997). The columnar organization of the neocortex.
Brain 120:701–722.

The 500 hidden units of ``two_layer`` are grouped into 25 columns of 20
units.  Units of a column are coupled by symmetric lateral weights (no
self-coupling, energy term −½ ρᵀLρ) that start at zero and are learned by the
same local EP rule as the feed-forward weights; units of different columns
interact only through the input and the output.  Every other setting is
``two_layer``'s (its validated rates and half-scale initialisation).
"""

from cortex_ep.models import two_layer

from cortex_ep.model.spec import layered

SIZES = two_layer.SIZES
COLUMNS = 25                  # 25 columns × 20 units
LEARNING_RATES = two_layer.LEARNING_RATES
LATERAL_LR = 0.2
INIT_GAIN = two_layer.INIT_GAIN
TAU_MS = two_layer.TAU_MS
DT_MS = two_layer.DT_MS
TRAINING = dict(two_layer.TRAINING)


def network(learning_rates=LEARNING_RATES, lateral_lr=LATERAL_LR):
    return layered(SIZES, learning_rates, tau=TAU_MS, dt=DT_MS, name="cortical_columns",
                   init_gain=INIT_GAIN, columns={1: COLUMNS}, lateral_lr={1: lateral_lr})


if __name__ == "__main__":
    import sys

    from cortex_ep.cli import main

    sys.exit(main(["train", "--model", __file__, *sys.argv[1:]]))

"""Random translations of the training digits, drawn afresh every epoch.

A network of 500 hidden units learns all 60,000 MNIST training digits (both EP
and backprop end above 99.8 % training accuracy), so what limits its test
accuracy is generalisation.  Shifting each training digit by a few whole
pixels, a new draw per epoch, is the classic remedy for fully connected
networks (Simard, Steinkraus & Platt 2003; LeCun et al. 1998, "distortions").
It touches only the images the learning loop hands an engine, so every engine
(Brian2, the twin, the reference, backprop) sees the same shifted digits; the
held-out digits are never shifted.

The images must be square (28 × 28 for MNIST): a row-major flattening of
``side × side`` pixels.
"""

from __future__ import annotations

import math

import numpy as np


def image_side(pixels: int) -> int:
    """Side of a square image of ``pixels`` pixels; ValueError if it is not square."""
    side = math.isqrt(pixels)
    if side * side != pixels:
        raise ValueError(f"--shift translates square images, but the data has {pixels} "
                         "pixels per image (not a square number): use --shift 0")
    return side


def check_shift(max_shift, pixels: int | None = None) -> int:
    """Validate a maximal shift in pixels (for images of ``pixels`` pixels, if given)."""
    if not isinstance(max_shift, (int, np.integer)) or isinstance(max_shift, bool) \
            or max_shift < 0:
        raise ValueError(f"shift = {max_shift!r}: give a whole number of pixels >= 0")
    if max_shift and pixels is not None:
        side = image_side(pixels)
        if max_shift >= side:
            raise ValueError(f"shift = {max_shift}: the images are {side} pixels wide; "
                             f"give a shift below {side}")
    return int(max_shift)


def random_shifts(x: np.ndarray, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """Translate every image by its own whole-pixel offset, filling with 0.

    Parameters
    ----------
    x : (n, side * side) array
        Row-major square images.
    max_shift : int
        Offsets are drawn uniformly from ``-max_shift … max_shift`` in each
        direction, independently per image.  0 returns ``x`` itself.
    rng : numpy Generator
        Draws the offsets: ``2 n`` integers (rows first, then columns).

    Returns
    -------
    (n, side * side) array of ``x``'s dtype: image ``i`` moved down by
    ``dy[i]`` and right by ``dx[i]`` pixels.
    """
    if max_shift == 0:
        return x
    n, pixels = x.shape
    side = image_side(pixels)
    offsets = rng.integers(-max_shift, max_shift + 1, size=(2, n))
    k = max_shift
    padded = np.zeros((n, side + 2 * k, side + 2 * k), dtype=x.dtype)
    padded[:, k:k + side, k:k + side] = x.reshape(n, side, side)
    out = np.empty((n, side, side), dtype=x.dtype)
    for dy in range(-k, k + 1):
        for dx in range(-k, k + 1):
            idx = np.flatnonzero((offsets[0] == dy) & (offsets[1] == dx))
            if idx.size:
                # moving the image down by dy reads the padded frame dy rows higher
                out[idx] = padded[idx, k - dy:k - dy + side, k - dx:k - dx + side]
    return out.reshape(n, pixels)

"""How well a trained VAE maps cells to latents and back.

``injectivity`` is the practical injectivity test of the E²NAS spec (section 3.5, test 2): the
most likely decoding of the mean of every cell's encoding should give the cell back, and distinct
cells should get distinct means. ``decode_prior`` decodes draws from the prior N(0, I), to see
how much of the latent space decodes to valid cells.
"""

import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.trees import tree_index
from jaxnas.vae.dag import Dag
from jaxnas.vae.model import DVAE


def _in_chunks(fn, inputs, chunk: int):
    """``fn`` (jitted) over the leading axis of the pytree ``inputs`` in chunks of ``chunk``
    rows (the last one padded, so it compiles once); numpy outputs."""
    count = len(jax.tree.leaves(inputs)[0])
    outputs = []
    for start in range(0, count, chunk):
        rows = np.minimum(np.arange(start, start + chunk), count - 1)
        out = jax.device_get(fn(tree_index(inputs, rows)))
        outputs.append(jax.tree.map(lambda a: a[:min(chunk, count - start)], out))
    return jax.tree.map(lambda *parts: np.concatenate(parts), *outputs)


def min_pairwise_distance(points: np.ndarray, chunk: int = 512) -> float:
    """The smallest Euclidean distance between two rows of ``points`` [C, Z] (float64)."""
    points = np.asarray(points, np.float64)
    norms = np.sum(points ** 2, -1)
    best = np.inf
    for start in range(0, len(points), chunk):
        block = points[start:start + chunk]
        rows = np.arange(len(block))
        partial = block @ points.T  # |a - b|^2 = |a|^2 + |b|^2 - 2 a.b, in place
        partial *= -2
        partial += norms
        partial[rows, start + rows] = np.inf
        best = min(best, float(np.min(partial.min(1) + norms[start:start + chunk])))
    return float(np.sqrt(max(best, 0.0)))


def injectivity(vae: DVAE, params, dags: Dag, chunk: int = 1024) -> dict:
    """Encodes every DAG of the batch ``dags`` (types [C, N], adj [C, N, N]), decodes each mean
    by the most likely choices, and compares. Returns ``cells``, ``reconstructed`` (how many
    decode to themselves) and ``reconstructed_fraction``, ``distinct_means`` (how many different
    mean vectors), ``min_mean_distance`` (between two cells' means) and ``failures`` (int
    indices of the DAGs not given back)."""

    @jax.jit
    def round_trip(dag):
        mean, _ = vae.apply({"params": params}, dag, method=DVAE.encode)
        return mean, vae.apply({"params": params}, mean, method=DVAE.decode)

    means, decoded = _in_chunks(round_trip, Dag(*map(np.asarray, dags)), chunk)
    same = (np.all(decoded.types == np.asarray(dags.types), -1)
            & np.all(decoded.adj == np.asarray(dags.adj), (-2, -1)))
    return {"cells": len(same), "reconstructed": int(same.sum()),
            "reconstructed_fraction": float(same.mean()),
            "distinct_means": len(np.unique(means, axis=0)),
            "min_mean_distance": min_pairwise_distance(means),
            "failures": np.flatnonzero(~same)}


def decode_prior(vae: DVAE, params, key, count: int, chunk: int = 1024) -> Dag:
    """The most likely decodings of ``count`` draws from the prior N(0, I): numpy DAGs."""
    z = np.asarray(jax.random.normal(key, (count, vae.latent), jnp.float32))
    decode = jax.jit(lambda z: vae.apply({"params": params}, z, method=DVAE.decode))
    return _in_chunks(decode, z, chunk)

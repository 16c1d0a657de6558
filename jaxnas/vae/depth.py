"""E²NAS-R's depth regularizer in the latent space (Zhang thesis Eqs. 4.13-4.15; spec 002
section 3): minus the expected depth of the architectures the decoder makes from noisy latents.

Eq. 4.13 counts the connections ``c_j`` that join cell node i - 1 to node i. Which DAG edges
those are depends on how a space's cells are written as DAGs, so ``chain`` (bool [N, N]) marks
them: ``l0_depth = sum_{u, v} chain[u, v] adj[u, v]``. The thesis applies it to the DARTS space,
whose VAE does not exist yet; on NB201's DAGs every edge is always present (``none`` is a
vertex), so the depth is constant there and the thesis leaves the regularizer off.

Eq. 4.14, ``L_depth(z) = -E[l0_depth(alpha)], alpha ~ D(z + delta)``, is estimated with M
(10) draws: ``delta ~ N(0, noise_scale^2 I)`` (the thesis names neither its law nor its scale)
and a path sampled by the decoder from each ``z + delta``. Each draw contributes the
probabilities of the chain edges along its path (``decode_probs``) rather than their 0/1
values: given the earlier choices, an edge's probability is its expected value, so the sum is an
unbiased estimate of the expected depth too, and it is differentiable in z (the sampled choices
themselves are held fixed).
"""

import numbers
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np


def chain_depth(adj, chain) -> jax.Array:
    """Eq. 4.13 for DAGs adj [..., N, N] (0/1, or edge probabilities for its expectation) and
    the chain connections ``chain`` bool [N, N] -> [...]."""
    chain = np.asarray(chain, bool)
    if chain.ndim != 2 or jnp.shape(adj)[-2:] != chain.shape:
        raise ValueError(f"chain must be a bool [N, N] mask of the DAGs' vertex pairs, got shape "
                         f"{chain.shape} for adjacency of shape {jnp.shape(adj)}.")
    return jnp.sum(jnp.where(chain, adj, 0), axis=(-2, -1))


def depth_loss(decode_probs: Callable, z, key, chain, noise_scale: float,
               num_samples: int = 10, weight: float = 0.05) -> jax.Array:
    """``weight * L_depth(z)`` of Eqs. 4.14-4.15 (E²NAS-R: weight zeta = 0.05, M = 10), float
    [] for the latent z [n]. ``decode_probs(latents [M, n], key) -> DagProbs`` samples one path
    per row, e.g. ``lambda v, k: vae.apply({"params": p}, v, k, method=DVAE.decode_probs)``."""
    if (isinstance(num_samples, bool) or not isinstance(num_samples, numbers.Integral)
            or num_samples < 1):
        raise ValueError(f"num_samples (M, the decoded draws) must be an integer >= 1, got "
                         f"{num_samples!r}.")
    for name, value in (("noise_scale", noise_scale), ("weight", weight)):
        if (isinstance(value, bool) or not isinstance(value, numbers.Real)
                or not np.isfinite(value) or value < 0):
            raise ValueError(f"{name} must be a finite real number >= 0, got {value!r}.")
    z = jnp.asarray(z)
    if z.ndim != 1:
        raise ValueError(f"depth_loss takes one latent z [n], got shape {z.shape}.")
    noise_key, decode_key = jax.random.split(key)
    noisy = z + noise_scale * jax.random.normal(noise_key, (num_samples,) + z.shape, z.dtype)
    return -weight * jnp.mean(chain_depth(decode_probs(noisy, decode_key).adj, chain))

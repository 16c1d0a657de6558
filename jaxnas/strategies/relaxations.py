"""Relaxations: how architecture parameters become the per-edge operation weights a supernet
mixes (``{name: [E, K]}``), and how they are initialized.

``weights(alpha, key=None)`` is the deterministic map (the mode) without a key, and a sample of a
stochastic relaxation with one (deterministic relaxations ignore the key).
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np


def _normal_init(key, arch_shapes, scale):
    """``{name: scale * N(0, 1)}``, one key per name in sorted order."""
    keys = jax.random.split(key, len(arch_shapes))
    return {name: scale * jax.random.normal(k, shape)
            for k, (name, shape) in zip(keys, sorted(arch_shapes.items()))}


@dataclasses.dataclass(frozen=True)
class Softmax:
    """DARTS: softmax over each edge's operations; alpha initialized ``1e-3 N(0, 1)``."""

    def init(self, key, arch_shapes: dict) -> dict:
        return _normal_init(key, arch_shapes, 1e-3)

    def weights(self, alpha, key=None):
        del key
        return jax.tree.map(lambda a: jax.nn.softmax(a, axis=-1), alpha)


@dataclasses.dataclass(frozen=True)
class ClippedReLU:
    """Constrained DARTS's CRB (spec 003 section 2.2): ``clip(alpha, 0, 1)``, no normalization;
    alpha initialized ``1/K + 1e-4 N(0, 1)`` (K operations per edge)."""

    def init(self, key, arch_shapes: dict) -> dict:
        noise = _normal_init(key, arch_shapes, 1e-4)
        return {name: 1.0 / arch_shapes[name][-1] + a for name, a in noise.items()}

    def weights(self, alpha, key=None):
        del key
        return jax.tree.map(lambda a: jnp.clip(a, 0.0, 1.0), alpha)


@dataclasses.dataclass(frozen=True)
class HardConcreteDepth:
    """BaLeNAS's depth gates (Zhang thesis Eqs. 5.19-5.21; spec 002 section 4.6): on the
    ``chain`` edges (node i-1 -> node i) the ``none`` logit is read as the logit of a
    hard-concrete gate (Louizos et al.) on the connection, and the edge computes
    ``gate * softmax(other logits)``; every other edge is a plain softmax.

    A sample draws ``u ~ U(0, 1)``, ``s = sigmoid((log u - log(1-u) + logit) / temperature)``,
    stretches it to ``(high - low) s + low`` and clips to [0, 1]; the mode uses
    ``s = sigmoid(logit)``. ``depth_penalty`` is ``L0_depth`` of Eq. 5.20,
    ``-sum sigmoid(logit - temperature log(-low / high))``: minus the expected number of open
    gates.
    """

    chain: tuple[int, ...]  # edge rows of the gated connections
    none_index: int
    temperature: float = 2.0 / 3.0
    low: float = -0.1
    high: float = 1.1

    def init(self, key, arch_shapes: dict) -> dict:
        return Softmax().init(key, arch_shapes)

    def _gates(self, logits, key):
        if key is None:
            s = jax.nn.sigmoid(logits)
        else:
            u = jax.random.uniform(key, logits.shape, minval=1e-6, maxval=1.0 - 1e-6)
            s = jax.nn.sigmoid((jnp.log(u) - jnp.log1p(-u) + logits) / self.temperature)
        return jnp.clip(s * (self.high - self.low) + self.low, 0.0, 1.0)

    def _cell(self, a, key):
        rows = np.asarray(self.chain)
        weights = jax.nn.softmax(a, axis=-1)
        others = np.arange(a.shape[-1]) != self.none_index
        gated = jax.nn.softmax(jnp.where(others, a[rows], -jnp.inf), axis=-1)
        gate = self._gates(a[rows, self.none_index], key)
        return weights.at[rows].set(gate[:, None] * gated)

    def weights(self, alpha, key=None):
        names = sorted(alpha)
        keys = [None] * len(names) if key is None else list(jax.random.split(key, len(names)))
        return {name: self._cell(alpha[name], k) for name, k in zip(names, keys)}

    def depth_penalty(self, alpha):
        shift = self.temperature * np.log(-self.low / self.high)
        return -sum(jnp.sum(jax.nn.sigmoid(alpha[name][np.asarray(self.chain), self.none_index]
                                           - shift)) for name in alpha)


def gumbel_straight_through(key, logits, tau):
    """GDAS's hard Gumbel sample of each row of ``logits`` [E, K]: the one-hot argmax of
    ``(log_softmax(logits) + g) / tau`` (g standard Gumbel noise), with the gradient of the soft
    sample ``softmax((log_softmax(logits) + g) / tau)`` (straight-through). Returns [E, K]."""
    g = jax.random.gumbel(key, logits.shape, logits.dtype)
    soft = jax.nn.softmax((jax.nn.log_softmax(logits, axis=-1) + g) / tau, axis=-1)
    hard = jax.nn.one_hot(jnp.argmax(soft, -1), logits.shape[-1], dtype=soft.dtype)
    return hard - jax.lax.stop_gradient(soft) + soft

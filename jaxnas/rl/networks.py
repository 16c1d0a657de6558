"""The actor and critics of DDAS and CADAM: MLPs over the vectorized inputs (spec 001 section
2.1 step 4, ambiguity 3), Flax linen modules with any leading batch dimensions.

- ``Actor``: mu(s), state float[..., *state_shape] -> action float[..., *action_shape] in (0, 1)
  (sigmoid). DARTS: state and action [2, 14, K] (224 values with none, 196 without); NB201 [6, 5].
- ``StateActionCritic``: DDAS's Q(s, a) on concat(vec s, vec a) -> float[...] (ambiguity 14).
- ``ActionCritic``: CADAM's Q(a) (Eq. 4.3), no state -> float[...].

Hidden layers are ReLU, the critic's output linear; ``hidden`` defaults to DDAS's 3 x 256
(CADAM: (128, 256, 128) on NB201, (256, 256, 256) on DARTS). Flax's default initializers (LeCun
normal, zero bias): the thesis gives none.
"""

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from jaxnas.rl._checks import check_integer, check_trailing_shape

DDAS_HIDDEN = (256, 256, 256)
CADAM_NB201_HIDDEN = (128, 256, 128)
CADAM_DARTS_HIDDEN = (256, 256, 256)


class MLP(nn.Module):
    """float[..., D] -> float[..., out]: ``hidden`` ReLU layers, then a linear layer."""

    hidden: Sequence[int]
    out: int

    @nn.compact
    def __call__(self, x):
        for i, width in enumerate(self.hidden):
            check_integer(f"hidden[{i}] (an MLP width)", width, 1, "e.g. 256")
        for width in self.hidden:
            x = nn.relu(nn.Dense(width)(x))
        return nn.Dense(self.out)(x)


class Actor(nn.Module):
    """mu(s): the sigmoid of an MLP over vec(s), shaped as ``action_shape``. ``state_shape``
    defaults to ``action_shape`` (both methods' states are architecture-shaped)."""

    action_shape: Sequence[int]
    state_shape: Sequence[int] | None = None
    hidden: Sequence[int] = DDAS_HIDDEN

    @nn.compact
    def __call__(self, state):
        action_shape = _shape("Actor action_shape", self.action_shape)
        state_shape = _shape("Actor state_shape", self.action_shape if self.state_shape is None
                             else self.state_shape)
        check_trailing_shape("The actor's state", jnp.shape(state), state_shape,
                             "its state_shape after any batch dimensions")
        batch = jnp.shape(state)[:jnp.ndim(state) - len(state_shape)]
        x = MLP(self.hidden, int(np.prod(action_shape)))(jnp.reshape(state, batch + (-1,)))
        return nn.sigmoid(x).reshape(batch + action_shape)


class StateActionCritic(nn.Module):
    """Q(s, a) = MLP(concat(vec s, vec a)) -> float[...] (DDAS)."""

    state_shape: Sequence[int]
    action_shape: Sequence[int]
    hidden: Sequence[int] = DDAS_HIDDEN

    @nn.compact
    def __call__(self, state, action):
        s = _flatten("The critic's state", state, _shape("state_shape", self.state_shape))
        a = _flatten("The critic's action", action, _shape("action_shape", self.action_shape))
        if s.shape[:-1] != a.shape[:-1]:
            raise ValueError(f"StateActionCritic needs states and actions with the same batch "
                             f"dimensions, got {list(s.shape[:-1])} and {list(a.shape[:-1])}.")
        return MLP(self.hidden, 1)(jnp.concatenate([s, a], axis=-1))[..., 0]


class ActionCritic(nn.Module):
    """Q(a) = MLP(vec a) -> float[...] (CADAM, Eq. 4.3)."""

    action_shape: Sequence[int]
    hidden: Sequence[int] = CADAM_NB201_HIDDEN

    @nn.compact
    def __call__(self, action):
        a = _flatten("The critic's action", action, _shape("action_shape", self.action_shape))
        return MLP(self.hidden, 1)(a)[..., 0]


def _shape(name, shape) -> tuple:
    shape = tuple(shape)
    for i, size in enumerate(shape):
        check_integer(f"{name}[{i}]", size, 1, "e.g. (2, 14, 8) for DARTS or (6, 5) for NB201")
    if not shape:
        raise ValueError(f"{name} must name at least one dimension, e.g. (6, 5), got ().")
    return shape


def _flatten(name, x, shape):
    check_trailing_shape(name, jnp.shape(x), shape, "its shape after any batch dimensions")
    return jnp.reshape(x, jnp.shape(x)[:jnp.ndim(x) - len(shape)] + (-1,))

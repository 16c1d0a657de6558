"""Bilevel gradient strategies: DARTS (first and second order), iDARTS and Amended-DARTS.

One step is ``inner_steps`` SGD steps of the weights on train batches and one Adam step of alpha
along a hypergradient (``jaxnas.hypergrad``) computed on a train batch and a val batch:

- DARTS (Liu et al. 2019): alpha first, then one weight step; ``FirstOrder`` or
  ``Unrolled(lr=current weight lr, steps=1)`` (second order).
- iDARTS (Zhang thesis, Algorithm 6): T weight steps, then alpha with ``Neumann(lr=gamma, K)`` on
  the last train batch and a val batch (Eq. 6.9); gamma is the current weight learning rate.
- Amended-DARTS (Bi et al.): alpha first with ``Amended(eta)``, then one weight step.

The inner loss is the training cross-entropy (weight decay lives in the optimizer, as in DARTS);
``hessian_weight_decay`` adds ``wd/2 ||w||^2`` to it, i.e. ``wd * I`` to the Hessian.
"""

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp

from jaxnas import hypergrad as hg
from jaxnas.strategies.base import Strategy, step_key, tree_norm


@dataclasses.dataclass(frozen=True)
class GradientSearch(Strategy):
    """Attributes:
      method: learning rate -> hypergradient method (``jaxnas.hypergrad``).
      inner_steps: weight steps per alpha step (T).
      alpha_first: update alpha before the weight steps (DARTS) or after them (iDARTS).
      hessian_weight_decay: L2 coefficient added to the inner loss of the hypergradient.
    """

    method: Callable
    name: str = "gradient"
    inner_steps: int = 1
    alpha_first: bool = True
    hessian_weight_decay: float = 0.0

    def __post_init__(self):
        if self.inner_steps < 1:
            raise ValueError(f"inner_steps must be >= 1, got {self.inner_steps}.")

    @property
    def train_batches(self) -> int:
        return self.inner_steps

    def step(self, state, batches, problem):
        xs = problem.images(step_key(state, 0), batches["train"]["image"])  # [T, B, H, W, C]
        ys = batches["train"]["label"]
        xv = problem.images(step_key(state, 1), batches["val"]["image"][0])
        yv = batches["val"]["label"][0]
        lr = problem.w_lr(state.step * self.inner_steps)
        alpha_metrics = {}
        if self.alpha_first:
            state, alpha_metrics = self._alpha_step(state, xs[0], ys[0], xv, yv, lr, problem)
        state, (train_loss, train_acc) = self._weight_steps(state, xs, ys, problem)
        if not self.alpha_first:
            state, alpha_metrics = self._alpha_step(state, xs[-1], ys[-1], xv, yv, lr, problem)
        metrics = {"lr": lr, "train_loss": train_loss, "train_accuracy": train_acc,
                   **alpha_metrics}
        return state.replace(step=state.step + 1), metrics

    def _weight_steps(self, state, xs, ys, problem):
        # Unrolled, not a lax.scan: XLA's CPU backend runs a network's convolutions up to 30x
        # slower inside a loop body (jax-ml/jax#12868), and T is small.
        weights = self.arch_weights(state.alpha)
        params, batch_stats, opt_w = state.params, state.batch_stats, state.opt_w
        losses, accs = [], []
        for x, y in zip(xs, ys):
            params, batch_stats, opt_w, loss, acc = problem.weight_step(
                params, batch_stats, opt_w, weights, x, y)
            losses.append(loss)
            accs.append(acc)
        state = state.replace(params=params, batch_stats=batch_stats, opt_w=opt_w)
        return state, (jnp.mean(jnp.stack(losses)), jnp.mean(jnp.stack(accs)))

    def _alpha_step(self, state, x_train, y_train, x_val, y_val, lr, problem):
        wd = self.hessian_weight_decay

        def loss(w, alpha, batch):
            value, (_, acc) = problem.loss(w, state.batch_stats, self.arch_weights(alpha), *batch)
            if wd:
                value = value + 0.5 * wd * tree_norm(w) ** 2
            return value, acc

        grad, info = hg.hypergradient(self.method(lr), loss, loss, state.params, state.alpha,
                                      (x_train, y_train), (x_val, y_val), has_aux=True)
        updates, opt_alpha = problem.tx_alpha.update(grad, state.opt_alpha, state.alpha)
        alpha = jax.tree.map(jnp.add, state.alpha, updates)
        metrics = {"val_loss": info.pop("outer_loss"), "val_accuracy": info.pop("aux"),
                   "alpha_grad_norm": tree_norm(grad)}
        metrics.update({f"hypergrad/{k}": jnp.asarray(v, jnp.float32) for k, v in info.items()})
        return state.replace(alpha=alpha, opt_alpha=opt_alpha), metrics

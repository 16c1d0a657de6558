"""Bilevel gradient search: the DARTS family as one strategy with pluggable pieces.

One search step runs ``T`` weight steps (SGD on train batches) and, when the schedule says so,
one architecture update: the hypergradient (``jaxnas.hypergrad``) of the val loss at a train
batch and a val batch, taken at the architecture parameters (or at ``num_samples`` samples of
them, averaged), then the strategy's update rule (an optax transformation, e.g. Adam, or a chain
with penalties, projections, masks or Variational Adam).

The pieces:

- ``relaxation`` (``relaxations``): parameters -> operation weights (softmax, clipped, gated).
- ``method``: ``lr -> hypergradient method`` (first order, unrolled, Neumann, amended...); ``lr``
  is the current weight learning rate (DARTS's xi, iDARTS's gamma).
- ``rule``: the update rule; it receives the extra arguments ``progress`` (fraction of the planned
  search) and ``curvature`` (the mean of the squared per-sample hypergradients).
- ``schedule`` (``schedules``): weight steps per step, order, and the run-time decision to move.
- ``warmup_epochs``: epochs of weight steps alone before the architecture first moves
  (P-DARTS's 10 of 25 per stage).

DARTS (Liu et al. 2019), DARTS second order, iDARTS (Zhang thesis Algorithm 6) and
Amended-DARTS (Bi et al.) are instances (``registry``); constrained DARTS and BaLeNAS extend it.
The inner and outer losses are the training-mode cross-entropy on the train and the val batch
(weight decay lives in the optimizer, as in DARTS); ``hessian_weight_decay`` adds
``wd/2 ||w||^2`` to the inner loss only, i.e. ``wd * I`` to its Hessian. ``virtual_step``:
"sgd" (the DARTS paper's ``w - xi grad``) or "momentum" (the DARTS code's
``w - xi (momentum * buffer + grad + wd * w)``, with the weight optimizer's momentum buffer: the
inner loss gets the constant linear term ``<momentum * buffer + wd * w, .>``).
"""

import contextlib
import dataclasses
import os
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxnas import hypergrad as hg
from jaxnas import transforms, viz
from jaxnas.data.augment import normalize
from jaxnas.spaces.ops import canonical_convs
from jaxnas.strategies.base import Strategy, step_key, tree_norm
from jaxnas.strategies.relaxations import Softmax
from jaxnas.strategies.schedules import Alternating


VIRTUAL_STEPS = ("sgd", "momentum")


class BilevelState(NamedTuple):
    """The architecture state of a bilevel search.

    Attributes:
      alpha: the parameters the rule moves (logits; a posterior mean), ``{name: [E, K]}``.
      rule: the update rule's state. schedule: the schedule's state.
      updates: architecture updates so far (int32).
      last: the metrics of the last architecture update (val loss and accuracy, hypergradient
        norm and diagnostics), reported at the steps where the architecture does not move.
    """

    alpha: Any
    rule: Any
    schedule: Any
    updates: jax.Array
    last: dict


@dataclasses.dataclass(frozen=True)
class BilevelSearch(Strategy):
    """Attributes: see the module docstring; ``num_samples``: architecture samples per update
    (``sample_alpha``; the parameters themselves unless a subclass samples)."""

    method: Callable
    rule: optax.GradientTransformation
    name: str = "bilevel"
    relaxation: Any = Softmax()
    schedule: Any = Alternating()
    num_samples: int = 1
    hessian_weight_decay: float = 0.0
    virtual_step: str = "sgd"
    warmup_epochs: int = 0

    differentiable = True

    def __post_init__(self):
        if isinstance(self.num_samples, bool) or not isinstance(self.num_samples, int) \
                or self.num_samples < 1:
            raise ValueError(f"num_samples must be an integer >= 1, got {self.num_samples!r}.")
        if not self.hessian_weight_decay >= 0:
            raise ValueError(f"hessian_weight_decay must be >= 0, got "
                             f"{self.hessian_weight_decay!r}.")
        if self.virtual_step not in VIRTUAL_STEPS:
            raise ValueError(f"virtual_step must be one of {', '.join(map(repr, VIRTUAL_STEPS))}, "
                             f"got {self.virtual_step!r}.")
        if isinstance(self.warmup_epochs, bool) or not isinstance(self.warmup_epochs, int) \
                or self.warmup_epochs < 0:
            raise ValueError(f"warmup_epochs must be an integer >= 0 (epochs of weight steps "
                             f"before the architecture moves), got {self.warmup_epochs!r}.")
        object.__setattr__(self, "rule", optax.with_extra_args_support(self.rule))

    @property
    def train_batches(self) -> int:
        return self.schedule.inner_steps

    def init(self, key, arch_shapes):
        alpha = self.relaxation.init(key, arch_shapes)
        return BilevelState(alpha, self.rule.init(alpha), self.schedule.init(),
                            jnp.zeros((), jnp.int32), self._last_template())

    def sample_alpha(self, arch: BilevelState, key):
        """The architecture parameters a hypergradient is taken at: here ``arch.alpha``."""
        del key
        return arch.alpha

    def arch_weights(self, arch, key=None):
        if key is None:
            return self.relaxation.weights(arch.alpha)
        k_alpha, k_relax = jax.random.split(key)
        return self.relaxation.weights(self.sample_alpha(arch, k_alpha), k_relax)

    def arch_metrics(self, arch: BilevelState) -> dict:
        """``arch/alpha_updates``, the schedule's and the rule's metrics."""
        return {"arch/alpha_updates": arch.updates, **self.schedule.metrics(arch.schedule),
                **transforms.collect_metrics(arch.rule)}

    def step(self, state, batches, problem):
        xs = problem.images(step_key(state, 0), batches["train"]["image"])  # [T, B, H, W, C]
        ys = batches["train"]["label"]
        val = (problem.images(step_key(state, 1), batches["val"]["image"][0]),
               batches["val"]["label"][0])
        lr = problem.weight_lr(state.opt_w)
        move, schedule = self.schedule.decide(state.arch.schedule, state.step)
        if self.warmup_epochs:
            move = move & (problem.epoch(state.step) >= self.warmup_epochs)
        state = state.replace(arch=state.arch._replace(schedule=schedule))
        first = self.schedule.alpha_first
        train = (xs[0], ys[0]) if first else (xs[-1], ys[-1])
        if first:
            state = self._maybe_move(move, state, train, val, lr, problem)
        state, (train_loss, train_acc, sqnorm) = self._weight_steps(state, xs, ys, problem)
        state = state.replace(arch=state.arch._replace(
            schedule=self.schedule.observe(state.arch.schedule, sqnorm)))
        if not first:
            state = self._maybe_move(move, state, train, val, lr, problem)
        metrics = {"lr": lr, "train_loss": train_loss, "train_accuracy": train_acc,
                   **state.arch.last, **self.arch_metrics(state.arch)}
        return state.replace(step=state.step + 1), metrics

    def _weight_steps(self, state, xs, ys, problem):
        """T weight steps on xs [T, B, H, W, C], ys [T, B]. T > 1 of them run as one
        ``lax.scan`` with canonical convolutions (``ops.canonical_convs``: XLA:CPU runs other
        convolutions' gradients up to 30x slower in a loop body), so the program holds one
        weight step whatever T. Depthwise ones stay as the supernet builds them (taps only in
        scanned cells, whose program holds each edge once). -> state, (mean loss, mean
        accuracy, last squared grad norm)."""
        weights = self.relaxation.weights(state.arch.alpha)
        key = step_key(state, 3)  # drop-path, when the problem has it

        def one(carry, inputs):
            t, x, y = inputs
            result = problem.weight_step(*carry, weights, x, y, jax.random.fold_in(key, t))
            return ((result.params, result.batch_stats, result.opt_w),
                    (result.loss, result.accuracy, result.grad_sqnorm))

        carry = (state.params, state.batch_stats, state.opt_w)
        if len(xs) == 1:
            carry, outs = one(carry, (0, xs[0], ys[0]))
            outs = jax.tree.map(lambda a: a[None], outs)
        else:
            with canonical_convs():
                carry, outs = jax.lax.scan(one, carry, (jnp.arange(len(xs)), xs, ys))
        (params, batch_stats, opt_w), (losses, accs, sqnorms) = carry, outs
        state = state.replace(params=params, batch_stats=batch_stats, opt_w=opt_w)
        return state, (jnp.mean(losses), jnp.mean(accs), sqnorms[-1])

    def _maybe_move(self, move, state, train, val, lr, problem):
        if not (self.schedule.dynamic or self.warmup_epochs):
            return state.replace(arch=self._move(state, train, val, lr, problem))
        arch = jax.lax.cond(move, lambda: self._move(state, train, val, lr, problem),
                            lambda: state.arch)
        return state.replace(arch=arch)

    def _move(self, state, train, val, lr, problem) -> BilevelState:
        """One architecture update at the state's weights."""
        arch, wd = state.arch, self.hessian_weight_decay
        offset = (jax.lax.stop_gradient(problem.momentum_offset(state.params, state.opt_w))
                  if self.virtual_step == "momentum" else None)
        key = step_key(state, 2)
        grads, infos = [], []
        for sample in range(self.num_samples):
            k_alpha, k_relax = jax.random.split(jax.random.fold_in(key, sample))

            def outer(w, alpha, batch, k_relax=k_relax):
                weights = self.relaxation.weights(alpha, k_relax)
                value, (_, acc) = problem.loss(w, state.batch_stats, weights, *batch)
                return value, acc

            def inner(w, alpha, batch, outer=outer):
                value, acc = outer(w, alpha, batch)
                if wd:
                    value = value + 0.5 * wd * tree_norm(w) ** 2
                if offset is not None:
                    value = value + sum(jnp.vdot(c, x) for c, x in zip(
                        jax.tree.leaves(offset), jax.tree.leaves(w)))
                return value, acc

            method = self.method(lr)
            # Products in a loop body (Neumann(loop=True), CG) with loop-friendly convolutions.
            with canonical_convs() if hg.products_in_loop(method) else contextlib.nullcontext():
                grad, info = hg.hypergradient(method, inner, outer, state.params,
                                              self.sample_alpha(arch, k_alpha), train, val,
                                              has_aux=True)
            grads.append(grad)
            infos.append(info)
        mean = lambda *xs: xs[0] if len(xs) == 1 else sum(xs) / len(xs)  # noqa: E731
        grad = jax.tree.map(mean, *grads)
        curvature = jax.tree.map(lambda *gs: mean(*[jnp.square(g) for g in gs]), *grads)
        info = jax.tree.map(lambda *vs: mean(*[jnp.asarray(v, jnp.float32) for v in vs]),
                            *infos)
        updates, rule = self.rule.update(grad, arch.rule, arch.alpha,
                                         progress=problem.progress(state.step),
                                         curvature=curvature)
        last = _alpha_metrics(info, grad)
        return BilevelState(optax.apply_updates(arch.alpha, updates), rule, arch.schedule,
                            arch.updates + 1, last)

    def _last_template(self) -> dict:
        """Zeros with the keys ``_move`` reports (its hypergradient's diagnostics, traced on a
        two-parameter problem, nothing run)."""

        def toy(w, alpha, batch):
            del batch
            return jnp.sum(w * alpha) ** 2 + jnp.sum(w ** 2), jnp.float32(0)

        shapes = jax.eval_shape(lambda: _alpha_metrics(hg.hypergradient(
            self.method(1.0), toy, toy, jnp.ones(2), jnp.ones(2), None, None,
            has_aux=True)[1], jnp.zeros(2)))
        return {name: jnp.zeros(s.shape, s.dtype) for name, s in shapes.items()}

    def hessian_target(self, state, batch, problem):
        x = normalize(batch["image"], problem.mean, problem.std)

        def loss(alpha):
            return problem.loss(state.params, state.batch_stats, self.relaxation.weights(alpha),
                                x, batch["label"])[0]

        return loss, state.arch.alpha

    def write_figures(self, metrics_path, workdir):
        if not self.schedule.dynamic or not os.path.exists(metrics_path):
            return []
        path = os.path.join(workdir, "alpha_schedule.png")
        return [viz.plot_alpha_schedule(metrics_path, path)]


def _alpha_metrics(info: dict, grad) -> dict:
    info = dict(info)
    metrics = {"val_loss": info.pop("outer_loss"), "val_accuracy": info.pop("aux"),
               "alpha_grad_norm": tree_norm(grad),
               **{f"hypergrad/{k}": v for k, v in info.items()}}
    return {k: jnp.asarray(v, jnp.float32) for k, v in metrics.items()}

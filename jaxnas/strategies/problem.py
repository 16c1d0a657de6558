"""The search problem a strategy works on: a supernet, its data preprocessing, the weight
optimizer, and the shared pieces every strategy uses (the loss, one weight step).

It is static (built once per run by the engine) and holds no state; everything that changes lives
in the ``SearchState``.
"""

import dataclasses
from typing import Any, Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxnas.data.augment import preprocess
from jaxnas.spaces import single_path
from jaxnas.trees import tree_stack


class WeightStep(NamedTuple):
    """One weight step's result: the new variables and optimizer state, the batch's training
    loss and accuracy, and the squared norm of the weight gradient before the optimizer
    (clipping included) saw it."""

    params: Any
    batch_stats: Any
    opt_w: Any
    loss: jax.Array
    accuracy: jax.Array
    grad_sqnorm: jax.Array


@dataclasses.dataclass(frozen=True)
class SearchProblem:
    """Attributes:
      net: the supernet, ``net.apply(variables, x, arch_weights, train=...)``.
      mean, std: per-channel normalization; augment, cutout: training augmentation.
      tx_w: the weight optimizer; its state's update count (``optax.scale_by_schedule``) is the
        clock of ``w_lr``.
      w_lr: the weight learning rate as a function of the number of weight updates so far.
      planned_steps: the search steps of the whole planned search (epochs, not ``max_steps``):
        ``progress`` = step / planned_steps.
      aux_weight: weight of the auxiliary head's loss when the supernet has one.
      w_momentum, w_weight_decay: the weight optimizer's momentum and L2 coefficient (for
        DARTS's virtual step as its code takes it, ``momentum_offset``).
      drop_path: weight update count -> drop-path probability of the weight steps, or None (the
        supernet then has no drop-path).
      epochs: the planned epochs (``epoch_progress``, per-epoch schedules such as GDAS's
        temperature).
    """

    net: nn.Module
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: bool
    cutout: int
    tx_w: optax.GradientTransformation
    w_lr: Callable[[Any], Any]
    planned_steps: int = 1
    aux_weight: float = 0.4
    w_momentum: float = 0.0
    w_weight_decay: float = 0.0
    drop_path: Callable[[Any], Any] | None = None
    epochs: int = 1

    @property
    def plain_net(self) -> nn.Module:
        """``net`` without drop-path (the same variables): for initialization, and for the
        losses of architecture updates, which run without drop-path."""
        return self.net.clone(drop_path=False) if self.drop_path else self.net

    def images(self, key, images):
        """uint8 [..., B, H, W, C] -> float32, augmented when configured (one key per batch)."""
        if images.ndim == 5:
            keys = jax.random.split(key, images.shape[0])
            return jax.vmap(self.images)(keys, images)
        return preprocess(key, images, self.mean, self.std, augment=self.augment,
                          cutout=self.cutout)

    def weight_lr(self, opt_w):
        """The learning rate of the next weight update, from ``opt_w``'s own update count."""
        count = optax.tree_utils.tree_get(opt_w, "count")
        if count is None:
            raise ValueError("The weight optimizer keeps no update count; build it with a "
                             "learning-rate schedule (optax.scale_by_schedule).")
        return self.w_lr(count)

    def momentum_offset(self, params, opt_w):
        """``momentum * buffer + weight_decay * w``: what the original DARTS code adds to the
        gradient in its virtual step ``w - xi (momentum * buffer + grad + wd * w)``."""
        buffer = optax.tree_utils.tree_get(opt_w, "trace")
        if buffer is None:
            buffer = jax.tree.map(jnp.zeros_like, params)
        return jax.tree.map(lambda b, w: self.w_momentum * b + self.w_weight_decay * w,
                            buffer, params)

    def progress(self, step):
        """The fraction of the planned search done before ``step``, in [0, 1]."""
        return jnp.minimum(step / self.planned_steps, 1.0)

    def epoch(self, step):
        """The epoch ``step`` is in (0-based; the last epoch's for steps beyond the plan)."""
        return jnp.minimum(step // max(self.planned_steps // self.epochs, 1), self.epochs - 1)

    def epoch_progress(self, step):
        """The epoch of ``step`` over the last epoch, ``e / (epochs - 1)`` in [0, 1] (0 with one
        epoch): the clock of a schedule that changes once per epoch."""
        return self.epoch(step) / max(self.epochs - 1, 1)

    def loss(self, params, batch_stats, arch_weights, x, y, dropout=None):
        """Cross-entropy of the supernet in training mode on float images x [B, H, W, C] and
        int labels y [B]; ``dropout``: ``(key, rate)`` of drop-path, or None. Returns
        ``(loss, (new_batch_stats, accuracy))``."""
        net, kwargs = self.plain_net, {}
        if dropout is not None:
            net, kwargs = self.net, {"rngs": {"dropout": dropout[0]}, "drop_path_rate": dropout[1]}
        out, updates = net.apply({"params": params, "batch_stats": batch_stats}, x, arch_weights,
                                 train=True, mutable=["batch_stats"], **kwargs)
        logits, aux_logits = out if isinstance(out, tuple) else (out, None)
        loss = cross_entropy(logits, y)
        if aux_logits is not None:
            loss = loss + self.aux_weight * cross_entropy(aux_logits, y)
        return loss, (updates["batch_stats"], accuracy(logits, y))

    def combined_loss(self, coefficients):
        """A loss like ``loss`` over a list of architecture weights:
        ``sum_i coefficients[i] * loss(weights[i])`` on the same batch, the batch statistics
        passed from one forward to the next; the accuracy is the first term's. Terms of one
        structure, shape and dtype (single paths as op indices) run as one ``lax.scan``, so the
        program holds one copy of the network however many terms there are."""

        def loss(params, batch_stats, arch_weights, x, y, dropout=None):
            if len(arch_weights) != len(coefficients):
                raise ValueError(f"{len(arch_weights)} architecture weights for "
                                 f"{len(coefficients)} coefficients; give one of each per term.")
            if len(arch_weights) > 1 and _stackable(arch_weights):
                return self._scanned_loss(coefficients, params, batch_stats, arch_weights, x,
                                          y, dropout)
            total, first = 0.0, None
            for c, weights in zip(coefficients, arch_weights):
                value, (batch_stats, acc) = self.loss(params, batch_stats, weights, x, y,
                                                      dropout)
                total, first = total + c * value, acc if first is None else first
            return total, (batch_stats, first)

        return loss

    def _scanned_loss(self, coefficients, params, batch_stats, arch_weights, x, y, dropout):
        """``combined_loss`` of stackable terms as one scan over them."""
        dtype = jax.eval_shape(self.loss, params, batch_stats, arch_weights[0], x, y,
                               dropout)[0].dtype

        def term(carry, inputs):
            total, stats = carry
            c, weights = inputs
            value, (stats, acc) = self.loss(params, stats, weights, x, y, dropout)
            return (total + c * value, stats), acc

        (total, batch_stats), accs = jax.lax.scan(
            term, (jnp.zeros((), dtype), batch_stats),
            (jnp.asarray(coefficients, dtype), tree_stack(arch_weights)))
        return total, (batch_stats, accs[0])

    def weight_step(self, params, batch_stats, opt_w, arch_weights, x, y,
                    key=None, mask=None, loss=None) -> WeightStep:
        """One optimizer step of the weights on a batch; the architecture weights are
        constants. ``key``: the drop-path key (used when the problem has drop-path); ``mask``: a
        boolean per parameter (``jaxnas.spaces.single_path.path_mask``): the parameters and
        optimizer state where it is False stay bit-identical (a single-path step); ``loss``: a
        loss with ``loss``'s signature in its place (``combined_loss``)."""
        dropout = None
        if self.drop_path is not None and key is not None:
            dropout = (key, self.drop_path(optax.tree_utils.tree_get(opt_w, "count")))
        grad_fn = jax.value_and_grad(loss or self.loss, has_aux=True)
        (loss, (batch_stats, acc)), grads = grad_fn(params, batch_stats,
                                                    jax.lax.stop_gradient(arch_weights), x, y,
                                                    dropout)
        sqnorm = sum(jnp.sum(jnp.square(g)) for g in jax.tree.leaves(grads))
        updates, new_opt_w = self.tx_w.update(grads, opt_w, params)
        new_params = optax.apply_updates(params, updates)
        if mask is not None:
            new_params, new_opt_w = single_path.select(mask, (new_params, new_opt_w),
                                                       (params, opt_w))
        return WeightStep(new_params, batch_stats, new_opt_w, loss, acc, sqnorm)


def _stackable(trees) -> bool:
    """Whether the pytrees have one structure and each leaf one shape and dtype across them."""
    def signature(tree):
        leaves = [(jnp.shape(a), jnp.result_type(a)) for a in jax.tree.leaves(tree)]
        return jax.tree.structure(tree), leaves

    return all(signature(t) == signature(trees[0]) for t in trees[1:])


def cross_entropy(logits, labels):
    """Mean softmax cross-entropy; logits [B, K], labels int [B]."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def accuracy(logits, labels):
    return jnp.mean(jnp.argmax(logits, -1) == labels)

"""The optimizers of the papers, built from config: SGD with a per-epoch cosine schedule for the
weights, Adam for the architecture (PyTorch semantics: L2 weight decay added to the gradient)."""

import jax.numpy as jnp
import optax


def cosine_by_epoch(lr: float, lr_min: float, epochs: int, updates_per_epoch: int):
    """PyTorch's ``CosineAnnealingLR(T_max=epochs, eta_min=lr_min)`` stepped once per epoch:
    update ``count`` -> ``lr_min + (lr - lr_min) (1 + cos(pi e / epochs)) / 2``, e the epoch."""

    def schedule(count):
        epoch = jnp.floor_divide(count, updates_per_epoch)
        return lr_min + 0.5 * (lr - lr_min) * (1.0 + jnp.cos(jnp.pi * epoch / epochs))

    return schedule


def weight_optimizer(cfg, schedule) -> optax.GradientTransformation:
    """Gradient clipping (``grad_clip``, 0: none), L2 ``weight_decay``, SGD with momentum."""
    parts = []
    if cfg.grad_clip:
        parts.append(optax.clip_by_global_norm(cfg.grad_clip))
    if cfg.weight_decay:
        parts.append(optax.add_decayed_weights(cfg.weight_decay))
    parts.append(optax.sgd(schedule, momentum=cfg.momentum or None,
                           nesterov=bool(cfg.get("nesterov", False))))
    return optax.chain(*parts)


def arch_optimizer(cfg) -> optax.GradientTransformation:
    """L2 ``weight_decay`` then Adam(``lr``, ``b1``, ``b2``) for the architecture parameters."""
    parts = [optax.add_decayed_weights(cfg.weight_decay)] if cfg.weight_decay else []
    parts.append(optax.adam(cfg.lr, b1=cfg.b1, b2=cfg.b2))
    return optax.chain(*parts)

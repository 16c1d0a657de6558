"""The weight optimizer of the papers, built from config: SGD with momentum, L2 weight decay added to
the gradient (PyTorch semantics) and a per-epoch learning-rate schedule. (Architecture update
rules belong to the strategies: ``jaxnas.strategies.options``.)"""

import jax.numpy as jnp
import optax


def cosine_by_epoch(lr: float, lr_min: float, epochs: int, updates_per_epoch: int):
    """PyTorch's ``CosineAnnealingLR(T_max=epochs, eta_min=lr_min)`` stepped once per epoch:
    update ``count`` -> ``lr_min + (lr - lr_min) (1 + cos(pi e / epochs)) / 2``, e the epoch;
    ``lr_min`` after the last epoch (DDAS's search steps after its warm-up)."""

    def schedule(count):
        epoch = jnp.minimum(jnp.floor_divide(count, updates_per_epoch), epochs)
        return lr_min + 0.5 * (lr - lr_min) * (1.0 + jnp.cos(jnp.pi * epoch / epochs))

    return schedule


def drop_path_by_epoch(rate: float, epochs: int, steps_per_epoch: int):
    """DARTS's drop-path schedule, set at the start of each epoch: step -> ``rate * e / epochs``,
    e the epoch (0 in the first epoch, ``rate * (epochs - 1) / epochs`` in the last)."""

    def schedule(step):
        return rate * jnp.floor_divide(step, steps_per_epoch) / epochs

    return schedule


SCHEDULES = ("cosine", "exponential", "linear")


def epoch_schedule(cfg, epochs: int, steps_per_epoch: int):
    """The per-epoch learning rate of ``cfg.schedule``, as a function of the update count:

    - ``cosine``: ``lr_min + (lr - lr_min) (1 + cos(pi e / epochs)) / 2`` (DARTS on CIFAR);
    - ``exponential``: ``lr * decay ** e`` (DARTS on ImageNet: decay 0.97);
    - ``linear``: ``lr_min + (lr - lr_min) (1 - e / epochs)`` (P-DARTS / Amended-DARTS ImageNet).
    """
    if cfg.schedule == "cosine":
        return cosine_by_epoch(cfg.lr, cfg.lr_min, epochs, steps_per_epoch)
    if cfg.schedule == "exponential":
        return lambda count: cfg.lr * cfg.decay ** jnp.floor_divide(count, steps_per_epoch)
    if cfg.schedule == "linear":
        return lambda count: cfg.lr_min + (cfg.lr - cfg.lr_min) * (
            1.0 - jnp.floor_divide(count, steps_per_epoch) / epochs)
    raise ValueError(f"config.optim_w.schedule must be one of {SCHEDULES}, got "
                     f"{cfg.schedule!r}.")


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

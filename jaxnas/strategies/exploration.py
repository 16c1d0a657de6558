"""E²NAS's exploration enhancement (Zhang thesis Sec. 4.3.1.2 and 4.4.2.2; spec 002 section 3):
the latent step of Eq. 4.7, its weight schedule Sig_gamma(b) of Eq. 4.16, and the archive of
visited architectures whose GPND density (``jaxnas.vae.gpnd``) the step descends.

Eq. 4.7 moves the latent ``alpha_theta`` (z) by

    z <- z - (1 - gamma) grad L_val(z) - gamma grad L_N(z, A),   L_N = log p_A (Eq. 4.11),

so a large gamma pushes z toward where the archive A is thin. E²NAS-R (Eq. 4.15) adds
``zeta L_depth`` (``jaxnas.vae.depth.depth_loss``) as a ``penalty``.

The archive is a ``novelty.Archive`` FIFO (``novelty.push``) of ``{"latent": [M, n],
"residual_norm": [M, 1]}``: the latent of each visited architecture and the norm of its point's
residual off the decoder's manifold (``GPNDTerms.residual_norm``), from which ``p_Z`` and
``p_R`` are fitted. The thesis does not give its size; the spec (3.6) takes the last 1000 (the
authors' NB201 code keeps 50).
"""

import math
import numbers
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxnas.strategies import novelty
from jaxnas.vae.gpnd import GPNDTerms, fit_latent_gaussian, fit_radial_kde, gpnd_terms


def exploration_schedule(total: float, b: float = 10.0) -> Callable:
    """Sig_gamma(b), Eq. 4.16: ``gamma(t) = 1 - sigmoid((2 t / total - 1) b)``, from near 1 at
    t = 0 through 0.5 at t = total / 2 to near 0 at t = total (t in epochs, or steps with total
    in steps). Returns the jit-able ``gamma(t)``, computed as ``sigmoid((total - 2 t) / total
    b)`` (the same value, without the cancellation of ``1 - sigmoid`` near 0)."""
    _check_positive("The schedule's total (the search length T)", total)
    _check_positive("Sig_gamma's b", b)

    def gamma(t):
        return jax.nn.sigmoid((total - 2.0 * jnp.asarray(t, jnp.float32)) / total * b)

    return gamma


class LatentStep(NamedTuple):
    """One Eq. 4.7 step: ``latent`` [n] after it; ``direction`` [n] the gradient it descends,
    ``(1 - gamma) grad L_val + gamma grad log p_A (+ grad penalty)`` (for an optax
    optimizer in place of the plain step); ``log_density`` [] log p_A at the latent before."""

    latent: jax.Array
    direction: jax.Array
    log_density: jax.Array


def exploration_step(z, val_grad, log_density: Callable, gamma, step_size=1.0,
                     penalty: Callable | None = None) -> LatentStep:
    """Eq. 4.7 (Eq. 4.15 with ``penalty``) at the latent ``z`` [n]: ``val_grad`` [n] is
    grad_z L_val, ``log_density`` [n] -> [] is L_N = log p_A (e.g. ``archive_log_density``'s),
    ``penalty`` [n] -> [] an extra term of the objective (E²NAS-R: ``zeta L_depth``)."""
    z, val_grad = jnp.asarray(z), jnp.asarray(val_grad)
    if z.shape != val_grad.shape:
        raise ValueError(f"val_grad has shape {val_grad.shape}, the latent z {z.shape}; pass "
                         "the gradient of L_val with respect to z.")
    if isinstance(gamma, numbers.Real) and not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma!r} (use exploration_schedule).")
    density, density_grad = jax.value_and_grad(log_density)(z)
    direction = (1.0 - gamma) * val_grad + gamma * density_grad
    if penalty is not None:
        direction = direction + jax.grad(penalty)(z)
    return LatentStep(z - step_size * direction, direction, density)


def latent_archive(latent_dim: int, capacity: int = 1000) -> novelty.Archive:
    """An empty archive of ``capacity`` visited architectures: ``{"latent": float32 [M, n],
    "residual_norm": float32 [M, 1]}``."""
    return novelty.empty_archive({"latent": latent_dim, "residual_norm": 1}, capacity,
                                 jnp.float32)


def remember(archive: novelty.Archive, z, residual_norm) -> novelty.Archive:
    """``archive`` with the latent ``z`` [n] and its point's residual norm [] appended, the
    oldest dropped when full (FIFO)."""
    return novelty.push(archive, {"latent": z, "residual_norm": jnp.reshape(residual_norm, (1,))})


def archive_log_density(archive: novelty.Archive, decoder: Callable, z, x,
                        shrinkage: float = 0.1, bandwidth: float | None = None) -> GPNDTerms:
    """Eq. 4.10 at the point ``x`` [m] with latent ``z`` [n] against ``archive`` (at least one
    member): p_Z the shrinkage Gaussian of the members' latents, p_R the kernel density of their
    residual norms (``fit_latent_gaussian``, ``fit_radial_kde``); ``decoder`` [n] -> [m]."""
    members = novelty.valid(archive)
    latent = fit_latent_gaussian(archive.paths["latent"], members, shrinkage)
    radial = fit_radial_kde(archive.paths["residual_norm"][:, 0], members, bandwidth)
    return gpnd_terms(decoder, z, x, latent.log_prob, radial.log_prob)


def _check_positive(name: str, value) -> None:
    """A ValueError naming ``value`` unless it is a finite real number > 0."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not math.isfinite(value) or not value > 0):
        raise ValueError(f"{name} must be a finite real number > 0, got {value!r}.")

"""Generative probabilistic novelty detection on the decoder's manifold (GPND, Pidhorskyi et al.,
NeurIPS 2018), the density E²NAS's exploration term uses (Zhang thesis Eqs. 4.8-4.11, Lemma 2
and its proof A.2; spec 002 section 3).

A decoder ``g: R^n -> R^m`` (m > n) spans a manifold; a point ``x`` of R^m with latent ``z`` is
``g(z)`` plus noise orthogonal to it. With the SVD ``J_g(z) = U S V^T`` (U [m, n]) of the
Jacobian and ``w_perp`` the part of ``x - g(z)`` orthogonal to span(U), Eq. 4.10 reads

    log p(x) = -sum_i log s_i                       (volume: log|det S^-1|)
               + log p_Z(z)                         (tangent: the latent density)
               + log p_R(r) - log area(S^{m-n-1}_r) (orthogonal: r = ||w_perp||)

where ``p_R`` is the density of the noise's norm and ``area(S^{k-1}_r) = 2 pi^{k/2} r^{k-1} /
Gamma(k/2)`` the area of the sphere of radius r in R^k (A.11's normalizer; Eq. 4.10 prints
``pi^{(k-1)/2}``, which does not integrate to one). The thesis writes ``w_perp = U_perp^T x``; for
an affine manifold through the origin that is the same thing, and in general the residual
``x - g(z)`` is what lies in the normal space (the GPND and E²NAS code measure this
reconstruction residual).

``LatentGaussian`` and ``RadialKDE`` estimate ``p_Z`` and ``p_R`` from an archive's latents and
residual norms (spec 3.6: a shrinkage Gaussian, a kernel density). ``decoder_map`` and
``dag_point`` put a ``DVAE``'s decoder and its DAGs in one R^m: the probabilities of the choices
the decoder makes (each operation vertex's type, each decided edge), and their one-hot values.
"""

import math
import numbers
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.vae.dag import Dag
from jaxnas.vae.model import DVAE, edge_decisions


class GPNDTerms(NamedTuple):
    """The terms of Eq. 4.10's log-density, each float []: ``volume`` = -sum log s_i,
    ``tangent`` = log p_Z(z), ``orthogonal`` = log p_W_perp(w_perp), and ``residual_norm`` =
    ||w_perp|| (what an archive records of the point for ``RadialKDE``)."""

    volume: jax.Array
    tangent: jax.Array
    orthogonal: jax.Array
    residual_norm: jax.Array

    @property
    def log_density(self) -> jax.Array:
        """log p_A(x) of Eq. 4.10, float []."""
        return self.volume + self.tangent + self.orthogonal


def sphere_log_area(dim: int, radius) -> jax.Array:
    """log of the area of the sphere of radius ``radius`` in R^dim,
    ``log(2 pi^{dim/2} r^{dim-1} / Gamma(dim/2))`` (dim = 1: the two points, area 2)."""
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
        raise ValueError(f"The sphere's ambient dimension must be an integer >= 1, got {dim!r}.")
    return (math.log(2.0) + 0.5 * dim * math.log(math.pi) - math.lgamma(0.5 * dim)
            + (dim - 1) * jnp.log(radius))


def gpnd_terms(decoder: Callable, z, x, latent_log_density: Callable,
               radial_log_density: Callable, jitter: float = 1e-5) -> GPNDTerms:
    """Eq. 4.10 at the point ``x`` [m] with latent ``z`` [n]: ``decoder`` maps [n] -> [m],
    ``latent_log_density`` [n] -> [] is log p_Z, ``radial_log_density`` [] -> [] is log p_R.

    The SVD enters only through ``sum log s_i = log det(J^T J) / 2`` and the projection on
    span(U) = span(J), ``J (J^T J)^-1 J^T``, both computed from the Cholesky factor of
    ``J^T J + jitter sum(s^2) I``: differentiable in z even where singular values coincide or
    vanish (a decoder whose Jacobian has rank below n, where an SVD's gradient is NaN).
    ``jitter`` 0 is the exact formula. ``x`` must be off the manifold (r > 0): the orthogonal
    term has ``-(m - n - 1) log r``.
    """
    z, x = jnp.asarray(z), jnp.asarray(x)
    if z.ndim != 1 or x.ndim != 1:
        raise ValueError(f"gpnd_terms takes one latent z [n] and one point x [m], got shapes "
                         f"{z.shape} and {x.shape}; vmap it for a batch.")

    def both(v):
        out = decoder(v)
        return out, out

    jacobian, mean = jax.jacfwd(both, has_aux=True)(z)
    n, m = z.shape[0], x.shape[0]
    if mean.shape != x.shape:
        raise ValueError(f"The decoder maps z {z.shape} to {mean.shape}, but x has shape "
                         f"{x.shape}; give x in the decoder's output coordinates.")
    if m <= n:
        raise ValueError(f"GPND needs an ambient dimension m above the latent dimension n, got "
                         f"m = {m} and n = {n}.")
    _check_real("jitter", jitter, 0.0, None)
    gram = jacobian.T @ jacobian
    gram = gram + jitter * jnp.trace(gram) * jnp.eye(n, dtype=gram.dtype)
    chol = jnp.linalg.cholesky(gram)
    residual = x - mean
    tangent = jax.scipy.linalg.cho_solve((chol, True), jacobian.T @ residual)
    normal = residual - jacobian @ tangent
    norm = jnp.sqrt(jnp.sum(normal ** 2))
    return GPNDTerms(volume=-jnp.sum(jnp.log(jnp.diag(chol))),
                     tangent=latent_log_density(z),
                     orthogonal=radial_log_density(norm) - sphere_log_area(m - n, norm),
                     residual_norm=norm)


class LatentGaussian(NamedTuple):
    """A Gaussian over latents: ``mean`` [n] and the Cholesky factor ``chol`` [n, n] of its
    covariance."""

    mean: jax.Array
    chol: jax.Array

    def log_prob(self, z) -> jax.Array:
        """log N(z; mean, chol chol^T) for z [n], float []."""
        n = self.mean.shape[-1]
        white = jax.scipy.linalg.solve_triangular(self.chol, z - self.mean, lower=True)
        return (-0.5 * jnp.sum(white ** 2) - jnp.sum(jnp.log(jnp.diag(self.chol)))
                - 0.5 * n * math.log(2 * math.pi))


def fit_latent_gaussian(latents, valid, shrinkage: float = 0.1,
                        min_variance: float = 1e-4) -> LatentGaussian:
    """The Gaussian of the rows ``latents`` [M, n] where ``valid`` [M] (at least one): their
    mean, and the covariance ``(1 - shrinkage) C + shrinkage tr(C)/n I + min_variance I`` with C
    the sample covariance (denominator count - 1; zero for a single row)."""
    _check_real("shrinkage", shrinkage, 0.0, 1.0)
    _check_real("min_variance", min_variance, 0.0, None, open_low=True)
    latents = _floating(latents)
    weights = jnp.asarray(valid, latents.dtype)
    count = jnp.sum(weights)
    mean = weights @ latents / jnp.maximum(count, 1.0)
    centered = (latents - mean) * weights[:, None]
    sample = centered.T @ centered / jnp.maximum(count - 1.0, 1.0)
    n = latents.shape[-1]
    eye = jnp.eye(n, dtype=latents.dtype)
    cov = ((1.0 - shrinkage) * sample + shrinkage * jnp.trace(sample) / n * eye
           + min_variance * eye)
    return LatentGaussian(mean, jnp.linalg.cholesky(cov))


class RadialKDE(NamedTuple):
    """A Gaussian kernel density of norms on [0, inf), reflected at 0 so that it integrates to
    one there: ``norms`` [M], ``valid`` bool [M] (the members), ``bandwidth`` []."""

    norms: jax.Array
    valid: jax.Array
    bandwidth: jax.Array

    def log_prob(self, r) -> jax.Array:
        """log p_R(r) for r >= 0, float []; -inf with no members."""
        h = self.bandwidth
        gaps = jnp.concatenate([r - self.norms, r + self.norms]) / h
        ok = jnp.concatenate([self.valid, self.valid])
        count = jnp.maximum(jnp.sum(self.valid), 1)
        kernels = jnp.where(ok, -0.5 * gaps ** 2, -jnp.inf)
        return (jax.nn.logsumexp(kernels) - jnp.log(count) - jnp.log(h)
                - 0.5 * math.log(2 * math.pi))


def fit_radial_kde(norms, valid, bandwidth: float | None = None,
                   min_bandwidth: float = 1e-2) -> RadialKDE:
    """The ``RadialKDE`` of ``norms`` [M] where ``valid`` [M]; ``bandwidth`` None takes
    Silverman's rule ``1.06 std count^(-1/5)``, at least ``min_bandwidth``."""
    _check_real("min_bandwidth", min_bandwidth, 0.0, None, open_low=True)
    if bandwidth is not None:
        _check_real("bandwidth", bandwidth, 0.0, None, open_low=True)
    norms = _floating(norms)
    valid = jnp.asarray(valid, bool)
    if bandwidth is None:
        count = jnp.maximum(jnp.sum(valid), 1)
        mean = jnp.sum(jnp.where(valid, norms, 0.0)) / count
        std = jnp.sqrt(jnp.sum(jnp.where(valid, (norms - mean) ** 2, 0.0)) / count)
        h = jnp.maximum(1.06 * std * count ** -0.2, min_bandwidth)
    else:
        h = jnp.asarray(bandwidth, norms.dtype)
    return RadialKDE(norms, valid, h)


def _free_coordinates(types, adj, num_ops: int):
    """The decoder's choices of DAGs with types [..., N, T] (one-hot or probabilities) and adj
    [..., N, N]: the operation types of vertices 1..N-2, then the decided edges in
    ``edge_decisions`` order -> [..., (N-2) num_ops + (N-2)(N-1)/2]."""
    n = types.shape[-2]
    src, dst = edge_decisions(n)
    ops = types[..., 1:n - 1, :num_ops]
    return jnp.concatenate([ops.reshape(ops.shape[:-2] + (-1,)), adj[..., src, dst]], -1)


def decoder_map(vae: DVAE, params) -> Callable:
    """``g(z)``: a latent [n] -> the decoder's probabilities [m] of the choices along its most
    likely path (``decode_probs``), m = (N-2) num_ops + (N-2)(N-1)/2."""

    def g(z):
        probs = vae.apply({"params": params}, z[None], method=DVAE.decode_probs)
        return _free_coordinates(probs.types, probs.adj, vae.num_ops)[0]

    return g


def dag_point(vae: DVAE, dag: Dag):
    """DAGs (types [..., N], adj [..., N, N]) -> their points [..., m] in ``decoder_map``'s
    coordinates (one-hot types, 0/1 edges), float32."""
    types = jax.nn.one_hot(jnp.asarray(dag.types), vae.num_types)
    return _free_coordinates(types, jnp.asarray(dag.adj, jnp.float32), vae.num_ops)


def _floating(values) -> jax.Array:
    """``values`` as a floating array (integers become the default float)."""
    values = jnp.asarray(values)
    return values.astype(jnp.result_type(values.dtype, float))


def _check_real(name: str, value, low: float, high: float | None, open_low: bool = False):
    """A ValueError naming ``value`` unless it is a real number in the range."""
    ok = (not isinstance(value, bool) and isinstance(value, numbers.Real)
          and math.isfinite(value) and (value > low if open_low else value >= low)
          and (high is None or value <= high))
    if not ok:
        bounds = (f"{'>' if open_low else '>='} {low}" if high is None
                  else f"in [{low}, {high}]")
        raise ValueError(f"{name} must be a finite real number {bounds}, got {value!r}.")

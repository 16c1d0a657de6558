"""E²NAS's pure pieces (spec 002 section 3.5): the GPND log-density against the closed-form
density of a linear-Gaussian manifold and on a tiny DVAE, its archive estimators, the Sig_gamma
schedule, the exploration step of Eq. 4.7 on a Gaussian density, the latent archive, the
complementary architecture and the complementation loss, and E²NAS-R's depth regularizer."""

import itertools
import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxnas.spaces import NB201_OPS, NB201Genotype, paths
from jaxnas.spaces.ops import DARTS_OPS
from jaxnas.spaces.space import DartsSpace
from jaxnas.strategies import novelty
from jaxnas.strategies.complementation import (complementary_ops, complementation_loss,
                                               complementation_weights)
from jaxnas.strategies.exploration import (archive_log_density, exploration_schedule,
                                           exploration_step, latent_archive, remember)
from jaxnas.strategies.problem import cross_entropy
from jaxnas.vae import DVAE, NB201_DAG_ADJ, Dag, DagProbs, nb201_to_dag
from jaxnas.vae.depth import chain_depth, depth_loss
from jaxnas.vae.gpnd import (LatentGaussian, dag_point, decoder_map, fit_latent_gaussian,
                             fit_radial_kde, gpnd_terms, sphere_log_area)

# The tiny DVAE reads DAGs of 4 vertices (2 operations; its unrolled decoder compiles much
# faster than NB201's 8): its decoder's R^m holds 2 types of 5 ops and 3 decided edges.
N, K, LATENT = 4, len(NB201_OPS), 4
OPS = N - 2
M_AMBIENT = OPS * K + OPS * (N - 1) // 2


class TinyVAE(NamedTuple):
    vae: DVAE
    params: dict
    g: Callable  # decoder_map, jitted
    decode: Callable  # the most likely DAGs of latents [B, n], jitted


@pytest.fixture(scope="module")
def tiny_vae():
    vae = DVAE(num_ops=K, num_vertices=N, hidden=16, latent=LATENT)
    # The decoder's parameters only (compiling the encoder too would double the setup).
    params = jax.jit(lambda key: vae.init(key, jnp.zeros((1, LATENT)), method=DVAE.decode))(
        jax.random.PRNGKey(0))["params"]
    return TinyVAE(vae, params, jax.jit(decoder_map(vae, params)),
                   jax.jit(lambda z: vae.apply({"params": params}, z, method=DVAE.decode)))


def _chi_log_pdf(r, k, sigma):
    """log density of ||N||, N ~ N(0, sigma^2 I_k): the chi distribution scaled by sigma."""
    return ((k - 1) * jnp.log(r) - r ** 2 / (2 * sigma ** 2) - (k / 2 - 1) * math.log(2)
            - k * math.log(sigma) - math.lgamma(k / 2))


# ------------------------------------------------------------------ GPND (Eqs. 4.8-4.11)


@pytest.mark.parametrize("n,m", [(3, 7), (2, 4), (3, 4)])
def test_gpnd_of_a_linear_decoder_is_the_density_of_the_rotated_gaussian(n, m):
    # The model: X = b + A Z + E with Z ~ N(mu, Sigma) in R^n and E ~ N(0, sigma^2 P), where
    # P = I - A A^+ projects on the normal space (noise orthogonal to the manifold, isotropic in
    # it), independent of Z. So X is Gaussian with mean b + A mu and covariance
    # A Sigma A^T + sigma^2 P (full rank: A Sigma A^T fills range(A), sigma^2 P the rest), and
    # for a linear decoder the linearization of Eq. 4.8 is exact. Eq. 4.10 with p_Z = N(mu,
    # Sigma), p_R the chi density of ||E|| (k = m - n, scale sigma), and z = A^+ (x - b) the
    # projection of x must give that density at every x. With Eq. 4.10's printed pi^{(k-1)/2}
    # it would be off by log(sqrt(pi)).
    rng = np.random.default_rng(100 * n + m)
    a, b, mu = rng.normal(size=(m, n)), rng.normal(size=m), rng.normal(size=n)
    root = rng.normal(size=(n, n))
    sigma_z, sigma = root @ root.T + 0.5 * np.eye(n), 0.3
    normal = np.eye(m) - a @ np.linalg.pinv(a)
    model = stats.multivariate_normal(b + a @ mu, a @ sigma_z @ a.T + sigma ** 2 * normal)
    with jax.enable_x64(True):
        latent = LatentGaussian(jnp.asarray(mu), jnp.linalg.cholesky(jnp.asarray(sigma_z)))

        def gpnd(z, x):
            return gpnd_terms(lambda v: jnp.asarray(b) + jnp.asarray(a) @ v, z, x,
                              latent.log_prob, lambda r: _chi_log_pdf(r, m - n, sigma), jitter=0.0)

        terms_and_grad = jax.jit(lambda z, x: (
            gpnd(z, x), jax.grad(lambda v: gpnd(v, x).log_density)(z)))
        for x in 2.0 * rng.normal(size=(4, m)):
            # Away from the projection only the tangent term moves with z (P (x - b - A z) =
            # P (x - b)): the gradient is that of log N(z; mu, Sigma), -Sigma^-1 (z - mu).
            elsewhere = rng.normal(size=n)
            np.testing.assert_allclose(terms_and_grad(elsewhere, x)[1],
                                       -np.linalg.solve(sigma_z, elsewhere - mu), rtol=1e-9)
            z = np.linalg.lstsq(a, x - b, rcond=None)[0]
            got = terms_and_grad(z, x)[0]
            np.testing.assert_allclose(got.log_density, model.logpdf(x), rtol=1e-9, atol=1e-9)
            np.testing.assert_allclose(got.residual_norm, np.linalg.norm(normal @ (x - b)),
                                       rtol=1e-9)
            np.testing.assert_allclose(got.volume,
                                       -np.sum(np.log(np.linalg.svd(a, compute_uv=False))),
                                       rtol=1e-9)


def test_gpnd_of_a_rank_deficient_decoder_has_a_finite_gradient():
    # A decoder that ignores one latent coordinate: one singular value is 0, where the SVD's
    # gradient is NaN; the jittered Gram-matrix form keeps the density and its gradient finite,
    # and the tangent gradient along the used coordinates is still the Gaussian's.
    a = jnp.asarray(np.random.default_rng(0).normal(size=(6, 2)), jnp.float32)
    decoder = lambda v: a @ v[:2]  # noqa: E731
    latent = LatentGaussian(jnp.zeros(3), jnp.eye(3))
    x = jnp.arange(6, dtype=jnp.float32)
    z = jnp.asarray([0.3, -0.2, 0.5])
    terms, grad = jax.value_and_grad(lambda v: gpnd_terms(
        decoder, v, x, latent.log_prob, lambda r: -r).log_density)(z)
    assert np.isfinite(terms) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(grad[2], -z[2], rtol=1e-4)


@pytest.mark.parametrize("dim,area", [(1, lambda r: 2.0), (2, lambda r: 2 * np.pi * r),
                                      (3, lambda r: 4 * np.pi * r ** 2),
                                      (4, lambda r: 2 * np.pi ** 2 * r ** 3)])
def test_sphere_log_area_matches_the_sphere_areas(dim, area):
    for r in (0.5, 1.0, 2.5):
        np.testing.assert_allclose(np.exp(sphere_log_area(dim, r)), area(r), rtol=1e-6)


def test_gpnd_rejects_bad_shapes():
    latent, radial = (lambda z: 0.0), (lambda r: 0.0)
    with pytest.raises(ValueError, match=r"m above the latent dimension n, got m = 3 and n = 3"):
        gpnd_terms(lambda v: 2 * v, jnp.ones(3), jnp.ones(3), latent, radial)
    with pytest.raises(ValueError, match=r"maps z \(2,\) to \(4,\), but x has shape \(5,\)"):
        gpnd_terms(lambda v: jnp.tile(v, 2), jnp.ones(2), jnp.ones(5), latent, radial)
    with pytest.raises(ValueError, match=r"got shapes \(1, 2\) and \(4,\)"):
        gpnd_terms(lambda v: v, jnp.ones((1, 2)), jnp.ones(4), latent, radial)
    with pytest.raises(ValueError, match=r"sphere's ambient dimension .* got 0"):
        sphere_log_area(0, 1.0)


def test_latent_gaussian_is_the_shrunk_sample_gaussian_of_the_members():
    rng = np.random.default_rng(0)
    latents = rng.normal(size=(9, 3))
    latents[6:] = 1e3  # not members
    valid = np.arange(9) < 6
    shrinkage, floor = 0.2, 1e-3
    sample = np.cov(latents[:6].T)
    cov = (1 - shrinkage) * sample + (shrinkage * np.trace(sample) / 3 + floor) * np.eye(3)
    fit = fit_latent_gaussian(latents, valid, shrinkage, floor)
    np.testing.assert_allclose(fit.mean, latents[:6].mean(0), rtol=1e-5)
    np.testing.assert_allclose(fit.chol @ fit.chol.T, cov, rtol=1e-5, atol=1e-6)
    z = rng.normal(size=3)
    np.testing.assert_allclose(fit.log_prob(z), stats.multivariate_normal(
        latents[:6].mean(0), cov).logpdf(z), rtol=1e-5)
    single = fit_latent_gaussian(latents, np.arange(9) == 0, shrinkage, floor)
    np.testing.assert_allclose(single.chol @ single.chol.T, floor * np.eye(3), rtol=1e-5)
    with pytest.raises(ValueError, match=r"shrinkage must be .* in \[0.0, 1.0\], got 1.5"):
        fit_latent_gaussian(latents, valid, shrinkage=1.5)


def test_radial_kde_is_a_reflected_gaussian_kde_that_integrates_to_one():
    norms = np.array([0.2, 0.5, 1.3, 9.0])
    valid = np.array([True, True, True, False])
    h = 0.3
    kde = fit_radial_kde(norms, valid, bandwidth=h)
    log_prob = jax.jit(jax.vmap(kde.log_prob))
    grid = np.linspace(0.0, 8.0, 16001)
    density = np.exp(np.asarray(log_prob(jnp.asarray(grid, jnp.float32))))
    brute = np.mean([stats.norm.pdf(grid, c, h) + stats.norm.pdf(grid, -c, h)
                     for c in norms[valid]], axis=0)
    np.testing.assert_allclose(density, brute, rtol=1e-4, atol=1e-30)
    np.testing.assert_allclose(np.trapezoid(density, grid), 1.0, atol=1e-4)
    silverman = fit_radial_kde(norms, valid)
    np.testing.assert_allclose(silverman.bandwidth, 1.06 * np.std(norms[valid]) * 3 ** -0.2,
                               rtol=1e-5)
    with pytest.raises(ValueError, match=r"bandwidth must be .* > 0.0, got -1.0"):
        fit_radial_kde(norms, valid, bandwidth=-1.0)


def test_decoder_map_and_dag_point_share_the_decoders_coordinates(tiny_vae):
    vae = tiny_vae.vae
    z = jax.random.normal(jax.random.PRNGKey(1), (LATENT,))
    probs = np.asarray(tiny_vae.g(z))
    assert probs.shape == (M_AMBIENT,)
    assert np.all((probs >= 0) & (probs <= 1))
    np.testing.assert_allclose(probs[:OPS * K].reshape(OPS, K).sum(1), 1.0, rtol=1e-5)
    # The most likely DAG takes the argmax type and the edges of probability above 1/2.
    point = np.asarray(dag_point(vae, tiny_vae.decode(z[None])))[0]
    np.testing.assert_array_equal(point[:OPS * K].reshape(OPS, K).argmax(1),
                                  probs[:OPS * K].reshape(OPS, K).argmax(1))
    np.testing.assert_array_equal(point[OPS * K:], probs[OPS * K:] > 0.5)
    # An NB201 cell's point (an 8-vertex DVAE's coordinates): its ops one-hot, then its DAG's
    # edges j -> i (i = 1..6, j < i).
    ops = [3, 0, 1, 4, 2, 0]
    cell = nb201_to_dag(NB201Genotype(tuple(NB201_OPS[o] for o in ops)))
    edges = [NB201_DAG_ADJ[j, i] for i in range(1, 7) for j in range(i)]
    np.testing.assert_array_equal(dag_point(DVAE(num_ops=K, num_vertices=8), cell),
                                  np.concatenate([np.eye(K)[ops].ravel(), edges]))


def test_gpnd_on_the_dvae_matches_a_dense_reference(tiny_vae):
    vae, params = tiny_vae.vae, tiny_vae.params
    g = decoder_map(vae, params)
    rng = np.random.default_rng(3)
    z = jnp.asarray(rng.normal(size=LATENT), jnp.float32)
    x = dag_point(vae, tiny_vae.decode(z[None]))[0]
    members = rng.normal(size=(20, LATENT)).astype(np.float32)
    latent = fit_latent_gaussian(members, np.ones(20, bool))
    radial = fit_radial_kde(np.linspace(0.5, 2.0, 20), np.ones(20, bool))

    def log_density(v):
        terms = gpnd_terms(g, v, x, latent.log_prob, radial.log_prob, jitter=0.0)
        return terms.log_density, terms

    grad, terms = jax.jit(jax.grad(log_density, has_aux=True))(z)
    assert all(np.isfinite(t) for t in terms) and np.all(np.isfinite(grad))
    assert np.any(grad != 0)
    # The volume and orthogonal parts from a reverse-mode Jacobian (gpnd_terms uses forward
    # mode), in float64 numpy; central differences agree with it only loosely, as the decoder's
    # ReLUs put kinks within any step.
    jacobian = np.asarray(jax.jit(jax.jacrev(g))(z), np.float64)
    h = 1e-3
    differences = np.stack([(np.asarray(tiny_vae.g(z + h * e), np.float64)
                             - np.asarray(tiny_vae.g(z - h * e), np.float64)) / (2 * h)
                            for e in np.eye(LATENT, dtype=np.float32)], axis=1)
    np.testing.assert_allclose(differences, jacobian, atol=0.02 * np.abs(jacobian).max())
    basis, singular, _ = np.linalg.svd(jacobian, full_matrices=False)
    residual = np.asarray(x, np.float64) - np.asarray(tiny_vae.g(z), np.float64)
    normal = residual - basis @ (basis.T @ residual)
    np.testing.assert_allclose(terms.volume, -np.sum(np.log(singular)), rtol=1e-4)
    np.testing.assert_allclose(terms.residual_norm, np.linalg.norm(normal), rtol=1e-4)
    m, n = M_AMBIENT, LATENT
    np.testing.assert_allclose(terms.orthogonal, radial.log_prob(terms.residual_norm) - (
        math.log(2) + (m - n) / 2 * math.log(math.pi) - math.lgamma((m - n) / 2)
        + (m - n - 1) * math.log(np.linalg.norm(normal))), rtol=1e-4)
    np.testing.assert_allclose(terms.tangent, latent.log_prob(z), rtol=1e-6)


# ------------------------------------------------------------------ Sig_gamma (Eq. 4.16)


@pytest.mark.parametrize("b", [1.0, 2.0, 5.0, 10.0])
def test_sig_gamma_crosses_one_half_at_mid_search_and_decreases(b):
    total = 50
    gamma = jax.jit(exploration_schedule(total, b))
    values = np.asarray(jax.vmap(gamma)(jnp.arange(total + 1)))
    assert values[total // 2] == 0.5
    np.testing.assert_allclose(values[0], 1 / (1 + math.exp(-b)), rtol=1e-6)
    np.testing.assert_allclose(values[-1], 1 / (1 + math.exp(b)), rtol=1e-5)
    assert np.all(np.diff(values) < 0)


@pytest.mark.parametrize("total,b,match", [
    (50, 0.0, r"b must be a finite real number > 0, got 0.0"),
    (50, -10, r"b must be .* got -10"),
    (50, float("nan"), r"b must be .* got nan"),
    (50, True, r"b must be .* got True"),
    (0, 10, r"total \(the search length T\) must be .* got 0"),
    (-5.0, 10, r"got -5.0"),
    ("50", 10, r"got '50'"),
])
def test_sig_gamma_rejects_bad_b_and_total(total, b, match):
    with pytest.raises(ValueError, match=match):
        exploration_schedule(total, b)


# ------------------------------------------------------------------ the latent step (Eq. 4.7)


def test_exploration_step_on_a_gaussian_density_has_the_closed_form():
    # log N(z; mu, S) has the gradient -S^{-1} (z - mu), so Eq. 4.7 moves z by
    # -step [(1 - gamma) g + gamma (-S^{-1} (z - mu))]: away from mu, toward lower density.
    mu = np.array([0.5, -1.0, 2.0])
    cov = np.array([[2.0, 0.3, 0.0], [0.3, 1.0, -0.2], [0.0, -0.2, 0.5]])
    latent = LatentGaussian(jnp.asarray(mu, jnp.float32),
                            jnp.linalg.cholesky(jnp.asarray(cov, jnp.float32)))
    z, val_grad = np.array([1.0, 0.0, 1.0]), np.array([0.3, -0.7, 0.1])
    gamma, step = 0.3, 0.1
    density_grad = -np.linalg.solve(cov, z - mu)
    direction = (1 - gamma) * val_grad + gamma * density_grad
    run = jax.jit(lambda z, g, gam: exploration_step(z, g, latent.log_prob, gam, step))
    got = run(jnp.asarray(z, jnp.float32), jnp.asarray(val_grad, jnp.float32), gamma)
    np.testing.assert_allclose(got.direction, direction, rtol=1e-5)
    np.testing.assert_allclose(got.latent, z - step * direction, rtol=1e-5)
    np.testing.assert_allclose(got.log_density, stats.multivariate_normal(mu, cov).logpdf(z),
                               rtol=1e-5)
    # Pure exploration (gamma = 1) lowers the density; an E²NAS-R penalty adds its gradient.
    explore = exploration_step(z, np.zeros(3), latent.log_prob, 1.0, step)
    assert latent.log_prob(explore.latent) < latent.log_prob(z)
    penalized = exploration_step(z, val_grad, latent.log_prob, gamma, step,
                                 penalty=lambda v: 0.25 * jnp.sum(v ** 2))
    np.testing.assert_allclose(penalized.direction, direction + 0.5 * z, rtol=1e-5)


def test_exploration_step_rejects_bad_inputs():
    with pytest.raises(ValueError, match=r"val_grad has shape \(2,\), the latent z \(3,\)"):
        exploration_step(jnp.ones(3), jnp.ones(2), lambda v: 0.0, 0.5)
    with pytest.raises(ValueError, match=r"gamma must be in \[0, 1\], got 1.5"):
        exploration_step(jnp.ones(3), jnp.ones(3), lambda v: 0.0, 1.5)


# ------------------------------------------------------------------ the archive


def test_latent_archive_is_a_fifo_of_the_last_members():
    assert novelty.capacity(latent_archive(4)) == 1000
    archive = latent_archive(3, capacity=4)
    push = jax.jit(remember)
    seen = []
    for i in range(7):
        z, r = np.full(3, i, np.float32), np.float32(10 + i)
        archive = push(archive, z, r)
        seen.append((z, r))
    assert int(archive.size) == 4
    np.testing.assert_array_equal(archive.paths["latent"], [z for z, _ in seen[-4:]])
    np.testing.assert_array_equal(archive.paths["residual_norm"][:, 0],
                                  [r for _, r in seen[-4:]])
    with pytest.raises(ValueError, match=r"capacity \(M\) must be an integer >= 1, got 0"):
        latent_archive(3, capacity=0)


def test_archive_density_reads_only_the_members():
    rng = np.random.default_rng(5)
    a = jnp.asarray(rng.normal(size=(6, 2)), jnp.float32)
    decoder = lambda v: a @ v  # noqa: E731
    archive = latent_archive(2, capacity=8)
    for _ in range(5):
        archive = remember(archive, rng.normal(size=2), rng.uniform(0.5, 1.5))
    garbage = archive._replace(paths=jax.tree.map(lambda rows: rows.at[5:].set(7.0),
                                                  archive.paths))
    z, x = jnp.asarray(rng.normal(size=2), jnp.float32), jnp.asarray(rng.normal(size=6),
                                                                        jnp.float32)
    density = jax.jit(lambda arch: archive_log_density(arch, decoder, z, x))
    clean, dirty = density(archive), density(garbage)
    for got, want in zip(dirty, clean):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    members = np.asarray(archive.paths["latent"][:5])
    np.testing.assert_allclose(clean.tangent, stats.multivariate_normal(
        members.mean(0), 0.9 * np.cov(members.T) + (0.1 * np.trace(np.cov(members.T)) / 2
                                                     + 1e-4) * np.eye(2)).logpdf(z),
        rtol=1e-4)


# ------------------------------------------------------------------ complementation (Fig. 4.2)


def test_complementary_architecture_covers_and_is_disjoint_over_random_pairs():
    rng = np.random.default_rng(0)
    count, edges = 400, 6
    previous = rng.integers(0, K, (count, edges))
    changed = rng.random((count, edges)) < 0.5  # about half the edges keep their op
    current = np.where(changed, rng.integers(0, K, (count, edges)), previous)
    keys = jax.random.split(jax.random.PRNGKey(0), count)
    comp = np.asarray(jax.jit(jax.vmap(lambda k, c, p: complementary_ops(k, c, p, K)))(
        keys, current, previous))
    for cur, prev, c in zip(current, previous, comp):
        weights = lambda ops: {(e, int(op)) for e, op in enumerate(ops)}  # noqa: E731
        assert weights(cur) <= weights(prev) | weights(c)  # coverage
        assert not weights(prev) & weights(c)  # disjointness
    np.testing.assert_array_equal(comp[current != previous], current[current != previous])
    # Where the two agree, the other op is uniform over the K - 1 others.
    same = current == previous
    shift = (comp[same] - previous[same]) % K  # 1..K-1, uniform
    counts = np.bincount(shift, minlength=K)
    assert counts[0] == 0
    expected = same.sum() / (K - 1)
    assert np.all(np.abs(counts[1:] - expected) < 5 * np.sqrt(expected))


def test_complementary_darts_paths_use_the_same_edges_and_never_none():
    """DARTS paths (``jaxnas.spaces.paths``): the unused edges hold ``none`` (index 0 of
    DARTS_OPS), which has no weights; Fig. 4.2's invariants hold over the (edge, op) pairs of
    the other operations, and alpha_i^c uses exactly alpha_i's edges (so it is a valid path)."""
    space = DartsSpace(C=4, layers=3)
    keys = jax.random.split(jax.random.PRNGKey(3), 4 * 300).reshape(4, 300, -1)
    draw = jax.jit(jax.vmap(lambda k: paths.sample_path(space, k)["normal"]))
    current, previous = np.array(draw(keys[0])), np.array(draw(keys[1]))
    # Half the pairs share most choices: the current path is the previous one, one move away
    # (a move of the reduction cell leaves it equal).
    near = np.asarray(jax.jit(jax.vmap(lambda k, p: paths.mutate_path(
        space, k, {"normal": p, "reduce": p})["normal"]))(keys[2], previous))
    current[::2] = near[::2]
    none = DARTS_OPS.index("none")
    comp = np.asarray(jax.jit(jax.vmap(
        lambda k, c, p: complementary_ops(k, c, p, len(DARTS_OPS), none)))(
            keys[3], current, previous))
    weights = lambda ops: {(e, int(op)) for e, op in enumerate(ops) if op != none}  # noqa: E731
    for cur, prev, c in zip(current, previous, comp):
        assert weights(cur) <= weights(prev) | weights(c)  # coverage
        assert not weights(prev) & weights(c)  # disjointness
        np.testing.assert_array_equal(c == none, cur == none)  # the same edges
    assert np.sum((current == previous) & (current != none)) > 300  # the rule's case is hit


def test_complementary_ops_rejects_bad_inputs():
    key = jax.random.PRNGKey(0)
    with pytest.raises(ValueError, match=r"num_ops must be an integer with at least 2 "
                                         r"operations other than none=None .* got 1"):
        complementary_ops(key, jnp.zeros(6, int), jnp.zeros(6, int), 1)
    with pytest.raises(ValueError, match=r"other than none=0 .* got 2"):
        complementary_ops(key, jnp.zeros(6, int), jnp.zeros(6, int), 2, none=0)
    with pytest.raises(ValueError, match=r"shapes \(6,\) and \(5,\)"):
        complementary_ops(key, jnp.zeros(6, int), jnp.zeros(5, int), K)


def test_complementation_loss_is_ce_plus_l2_at_epsilon_zero():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 10, 16)
    logits = rng.normal(size=(3, 16, 10))
    weights = rng.normal(size=50)

    def ce(lg):  # softmax cross-entropy by hand
        shifted = lg - lg.max(1, keepdims=True)
        log_softmax = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
        return -log_softmax[np.arange(len(labels)), labels].mean()

    l2, eta = 0.5 * np.sum(weights ** 2), 5e-4
    current, complement, previous = (cross_entropy(jnp.asarray(lg, jnp.float32), labels)
                                     for lg in logits)
    np.testing.assert_allclose(
        complementation_loss(current, complement, previous, l2, epsilon=0.0, eta=eta),
        ce(logits[0]) + eta * l2, rtol=1e-5)
    np.testing.assert_allclose(
        complementation_loss(current, complement, previous, l2, eta=eta),
        0.5 * ce(logits[0]) + 0.5 * (ce(logits[1]) + ce(logits[2])) + eta * l2, rtol=1e-5)
    assert complementation_weights() == (0.5, 0.5, 0.5)
    for bad in (1.5, -0.1, True):
        with pytest.raises(ValueError, match=rf"epsilon .* in \[0, 1\], got {bad!r}"):
            complementation_weights(bad)


# ------------------------------------------------------------------ depth (Eqs. 4.13-4.15)

CHAIN = np.eye(N, k=1, dtype=bool)  # the edges v-1 -> v


def test_chain_depth_counts_the_chain_edges():
    adj = np.zeros((5, 5), bool)
    for u, v in [(0, 1), (1, 2), (0, 3), (2, 4), (3, 4)]:
        adj[u, v] = True
    chain = np.eye(5, k=1, dtype=bool)
    assert int(chain_depth(adj, chain)) == 3  # 0->1, 1->2, 3->4 (not 2->3)
    probs = np.where(adj, 0.5, 0.25)
    np.testing.assert_allclose(chain_depth(probs[None], chain), [3 * 0.5 + 0.25])
    with pytest.raises(ValueError, match=r"got shape \(4, 4\) for adjacency of shape \(5, 5\)"):
        chain_depth(adj, np.eye(4, dtype=bool))


def test_depth_loss_defaults_to_ten_draws_and_weight_five_hundredths():
    seen = []

    def decode_probs(latents, key):
        seen.append(latents.shape)
        return DagProbs(jnp.zeros((latents.shape[0], N, K + 2)), jnp.ones((latents.shape[0], N, N)))

    got = depth_loss(decode_probs, jnp.zeros(LATENT), jax.random.PRNGKey(0), CHAIN, 0.1)
    assert seen == [(10, LATENT)]
    np.testing.assert_allclose(got, -0.05 * CHAIN.sum())


def test_depth_loss_draws_gaussian_noise_of_the_given_scale():
    # A stand-in decoder whose every edge probability is (v_0 - z_0)^2 / scale^2: with
    # delta ~ N(0, scale^2 I) its expected chain depth is the chain's length.
    z, scale, draws = jnp.asarray([0.7, -0.2, 0.1, 0.4]), 0.3, 20000

    def decode_probs(latents, key):
        edge = ((latents[:, 0] - z[0]) / scale) ** 2
        return DagProbs(jnp.zeros((draws, N, K + 2)), jnp.broadcast_to(edge[:, None, None],
                                                                       (draws, N, N)))

    got = -depth_loss(decode_probs, z, jax.random.PRNGKey(0), CHAIN, scale, draws, 1.0)
    # The mean of 20000 chi-square(1) draws (variance 2) times the chain length.
    np.testing.assert_allclose(got, CHAIN.sum(), atol=4 * CHAIN.sum() * np.sqrt(2 / draws))


def test_depth_loss_estimates_minus_the_expected_decoded_depth(tiny_vae):
    # Without noise, E[l0_depth(D(z))] is exact by enumeration: the decoder's 2 types x 5 ops
    # and 3 decided edges make 200 DAGs, each with probability exp(log p(G | z)) (teacher
    # forcing), the output vertex fed by the sinks. On the chain 0->1, 1->2, 2->3 (2 is always a
    # sink), depth_loss's draw is 1 + p(0->1 | type 1) + p(1->2 | the path so far), in [1, 3]:
    # variance <= 1 (Popoviciu), standard error <= 1 / sqrt(M).
    vae, params = tiny_vae.vae, tiny_vae.params
    z, draws = jnp.asarray([0.3, -0.5, 1.0, 0.2]), 40000
    dags = []
    for t1, t2, e01, e02, e12 in itertools.product(range(K), range(K), *[(0, 1)] * 3):
        adj = np.zeros((N, N), bool)
        adj[0, 1], adj[0, 2], adj[1, 2] = e01, e02, e12
        adj[:N - 1, N - 1] = ~adj[:N - 1, :N - 1].any(1)
        dags.append(([K, t1, t2, K + 1], adj))
    batch = Dag(jnp.asarray([t for t, _ in dags]), jnp.asarray(np.stack([a for _, a in dags])))
    log_p = jax.jit(lambda z: vae.apply({"params": params}, jnp.broadcast_to(
        z, (len(dags), LATENT)), batch, method=DVAE.log_likelihood))(z)
    p = np.exp(np.asarray(log_p, np.float64))
    np.testing.assert_allclose(p.sum(), 1.0, rtol=1e-5)
    expected = p @ np.asarray(chain_depth(batch.adj, CHAIN), np.float64)
    assert 1.2 < expected < 2.8  # the depth varies, so the test can fail

    def decode_probs(latents, key):
        return vae.apply({"params": params}, latents, key, method=DVAE.decode_probs)

    loss, grad = jax.jit(jax.value_and_grad(
        lambda z: depth_loss(decode_probs, z, jax.random.PRNGKey(1), CHAIN, 0.0, draws, 1.0)))(z)
    assert abs(-float(loss) - expected) < 4 / np.sqrt(draws)
    assert np.all(np.isfinite(grad)) and np.any(grad != 0)


def test_depth_loss_rejects_bad_inputs():
    key, fake = jax.random.PRNGKey(0), (lambda v, k: None)
    with pytest.raises(ValueError, match=r"num_samples .* got 0"):
        depth_loss(fake, jnp.zeros(3), key, CHAIN, 0.1, num_samples=0)
    with pytest.raises(ValueError, match=r"noise_scale must be .* >= 0, got -1.0"):
        depth_loss(fake, jnp.zeros(3), key, CHAIN, -1.0)
    with pytest.raises(ValueError, match=r"one latent z \[n\], got shape \(2, 3\)"):
        depth_loss(fake, jnp.zeros((2, 3)), key, CHAIN, 0.1)

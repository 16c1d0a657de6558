"""Pooling in its CPU forms (jaxnas.spaces.pooling), each window reduced along the rows, then
the columns (on the CPU the search operations' programs hold no two-dimensional window). Max
pooling: values exactly XLA's, and gradients and Hessian-vector products through its window
slices against XLA's, compiled; ties go to the window's first maximal element, as a loop over
the windows says; the CPU program holds no select-and-scatter; the index barrier keeps values
and takes integers only. Average pooling: values against a loop over the windows, values and
derivatives against flax's."""

import functools
import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnas.spaces import ops, pooling
from jaxnas.spaces.fusion import index_barrier

FORMS = pytest.mark.parametrize("kernel,stride", [
    (3, 1),  # max_pool_3x3
    (3, 2),  # max_pool_3x3 on a reduction edge
    (5, 1),  # TND-NAS's max_pool_5x5
    (7, 2),  # TND-NAS's max_pool_7x7 on a reduction edge
    (13, 3),  # over 128 window elements: wider indices
])


def _pool(fn, kernel, stride, x):
    return fn(x, (kernel, kernel), (stride, stride), ((kernel // 2, kernel // 2),) * 2)


def _derivatives(fn, kernel, stride, x, ct, v):
    """jit of (pool, gradient, HVP) of sum(tanh(pool(x)) * ct)."""
    pool = functools.partial(_pool, fn, kernel, stride)
    loss = lambda x: jnp.sum(jnp.tanh(pool(x)) * ct)
    return jax.jit(lambda x: (pool(x), jax.grad(loss)(x), jax.jvp(jax.grad(loss), (x,), (v,))[1]))


@FORMS
def test_values_and_derivatives_equal_xla(kernel, stride):
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    x = jax.random.normal(keys[0], (2, 9, 10, 4))
    ct = jax.random.normal(keys[1], jax.eval_shape(functools.partial(
        _pool, nn.max_pool, kernel, stride), x).shape)
    v = jax.random.normal(keys[2], x.shape)
    got = _derivatives(pooling.max_pool, kernel, stride, x, ct, v)(x)
    want = _derivatives(nn.max_pool, kernel, stride, x, ct, v)(x)
    np.testing.assert_array_equal(got[0], want[0])  # maxima are exact, whatever the order
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6)


def _first_max_gradient(x, ct, kernel, stride):
    """d sum(max_pool(x) * ct) / dx by a loop over the windows: each output's cotangent goes to
    the first maximal element of its window in row-major order."""
    x, ct, pad = np.asarray(x), np.asarray(ct), kernel // 2
    grad = np.zeros_like(x)
    for b, i, j, c in np.ndindex(*ct.shape):
        best = None
        for p in range(kernel):
            for q in range(kernel):
                r, s = stride * i + p - pad, stride * j + q - pad
                if 0 <= r < x.shape[1] and 0 <= s < x.shape[2]:
                    if best is None or x[b, r, s, c] > x[b, best[0], best[1], c]:
                        best = (r, s)
        grad[b, best[0], best[1], c] += ct[b, i, j, c]
    return grad


@FORMS
def test_ties_go_to_the_first_maximal_element(kernel, stride):
    # ReLU outputs pool over many equal zeros; a few plateaus of ones make ties among maxima too.
    x = np.zeros((1, 8, 9, 2), np.float32)
    x[0, 2:5, 3:6, 0] = 1.0
    x[0, 6, ::2, 1] = 2.0
    x = jnp.asarray(x)
    out_shape = jax.eval_shape(functools.partial(_pool, pooling.max_pool, kernel, stride), x).shape
    ct = jax.random.normal(jax.random.PRNGKey(0), out_shape)
    grad = lambda fn: jax.jit(jax.grad(lambda x: jnp.sum(_pool(fn, kernel, stride, x) * ct)))(x)
    want = _first_max_gradient(x, ct, kernel, stride)
    np.testing.assert_allclose(grad(pooling.max_pool), want, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(grad(nn.max_pool), want, rtol=1e-6, atol=1e-6)  # XLA agrees


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the CPU backend's program")
def test_cpu_gradient_holds_no_select_and_scatter():
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 3))
    grad = lambda fn: jax.jit(jax.grad(lambda x: jnp.sum(jnp.sin(_pool(fn, 3, 1, x)))))
    assert "select-and-scatter" in grad(nn.max_pool).lower(x).as_text("hlo")  # what it replaces
    hlo = grad(pooling.max_pool).lower(x).compile().as_text()
    assert "select-and-scatter" not in hlo and "scatter(" not in hlo
    assert "conditional(" in hlo  # the index barrier


def test_search_operations_use_them_where_they_are_faster():
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 3))
    jaxpr = lambda name: str(jax.make_jaxpr(
        lambda x: ops.make_op(name, 3, 1, affine=False).apply({}, x))(x))
    assert ("custom_jvp_call" in jaxpr("max_pool_3x3")) == pooling.cpu_forms_are_faster()
    windows = lambda name: re.findall(r"window_dimensions=\(([\d, ]+)\)", jaxpr(name))
    rows_then_columns = ["1, 3, 1, 1", "1, 1, 3, 1"]
    assert windows("max_pool_3x3") == (rows_then_columns if pooling.cpu_forms_are_faster()
                                       else ["1, 3, 3, 1"])
    assert windows("avg_pool_3x3") == (rows_then_columns if pooling.cpu_forms_are_faster()
                                       else ["1, 3, 3, 1"] * 2)  # flax's: sums and counts


AVERAGES = pytest.mark.parametrize("kernel,stride,shape", [
    (3, 1, (2, 9, 10, 4)),  # avg_pool_3x3
    (3, 2, (2, 9, 10, 4)),  # avg_pool_3x3 on a reduction edge, odd sizes
    (3, 2, (1, 8, 8, 3)),
    (5, 1, (1, 6, 7, 2)),  # a window wider than half the image
])


@AVERAGES
def test_average_pooling_averages_the_in_bounds_pixels_of_each_window(kernel, stride, shape):
    x = np.asarray(jax.random.normal(jax.random.PRNGKey(0), shape))
    got = np.asarray(jax.jit(functools.partial(_pool, pooling.avg_pool, kernel, stride))(x))
    pad = kernel // 2
    for b, i, j, c in np.ndindex(*got.shape):
        rows = range(max(stride * i - pad, 0), min(stride * i - pad + kernel, shape[1]))
        cols = range(max(stride * j - pad, 0), min(stride * j - pad + kernel, shape[2]))
        want = np.mean([x[b, r, s, c] for r in rows for s in cols])
        np.testing.assert_allclose(got[b, i, j, c], want, rtol=1e-5, atol=1e-6)


@AVERAGES
def test_average_pooling_and_its_derivatives_equal_flax(kernel, stride, shape):
    keys = jax.random.split(jax.random.PRNGKey(1), 3)
    x = jax.random.normal(keys[0], shape)
    flax_pool = functools.partial(nn.avg_pool, count_include_pad=False)
    ct = jax.random.normal(keys[1], jax.eval_shape(functools.partial(
        _pool, flax_pool, kernel, stride), x).shape)
    v = jax.random.normal(keys[2], x.shape)
    got = _derivatives(pooling.avg_pool, kernel, stride, x, ct, v)(x)
    want = _derivatives(flax_pool, kernel, stride, x, ct, v)(x)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def test_index_barrier_keeps_values_and_takes_integers_only():
    x = jnp.arange(12, dtype=jnp.int8).reshape(3, 4)
    np.testing.assert_array_equal(jax.jit(index_barrier)(x), x)
    np.testing.assert_array_equal(jax.vmap(index_barrier)(x), x)
    with pytest.raises(TypeError, match="integer"):
        index_barrier(jnp.ones(3))

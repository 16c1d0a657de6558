"""The canonical convolution of single-path edges and scanned stages
(jaxnas.spaces.canonical_conv): values, gradients, Hessian-vector products (forward over reverse
and reverse over reverse) and vmap against XLA's convolution, inside a switch and a scan; and the
property it exists for, that a gradient compiled in a loop body holds only forward convolutions
in XLA:CPU's canonical order."""

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from jaxnas.spaces.canonical_conv import conv_general_dilated
from jaxnas.spaces.depthwise import NHWC

C = 6
FORMS = pytest.mark.parametrize("kernel,stride,padding,dilation,groups", [
    ((3, 3), (1, 1), 1, 1, 1),       # nor_conv_3x3
    ((1, 1), (2, 2), 0, 1, 1),       # FactorizedReduce
    ((3, 3), (2, 2), 1, 1, C),       # sep_conv_3x3, reduction edge (depthwise)
    ((5, 5), (2, 2), 4, 2, C),       # dil_conv_5x5, reduction edge
    ((1, 7), (1, 2), (0, 3), 1, 1),  # conv_7x1_1x7's first half
    ((3, 3), (2, 2), 1, 1, 1),       # odd size with stride 2: unused trailing rows
])


def _form(kernel, stride, padding, dilation, groups):
    """``(conv(fn, x, w), x, w)`` for one convolution form."""
    pads = (padding, padding) if isinstance(padding, int) else padding
    pads = tuple((p, p) for p in pads)

    def conv(fn, x, w):
        return fn(x, w, stride, pads, rhs_dilation=(dilation, dilation),
                  dimension_numbers=lax.conv_dimension_numbers(x.shape, w.shape, NHWC),
                  feature_group_count=groups)

    x = jax.random.normal(jax.random.PRNGKey(0), (3, 9, 10, C))
    w = jax.random.normal(jax.random.PRNGKey(1), (*kernel, C // groups, C))
    return conv, x, w


def _close(got, want):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(jnp.abs(want).max()))


@FORMS
def test_values_and_gradients_equal_xla(kernel, stride, padding, dilation, groups):
    conv, x, w = _form(kernel, stride, padding, dilation, groups)
    y_ref, vjp_ref = jax.vjp(functools.partial(conv, lax.conv_general_dilated), x, w)
    y, vjp = jax.vjp(functools.partial(conv, conv_general_dilated), x, w)
    dy = jax.random.normal(jax.random.PRNGKey(2), y.shape)
    np.testing.assert_array_equal(y, y_ref)
    for got, want in zip(vjp(dy), vjp_ref(dy)):
        _close(got, want)


@FORMS
def test_hessian_vector_products_equal_xla(kernel, stride, padding, dilation, groups):
    conv, x, w = _form(kernel, stride, padding, dilation, groups)
    keys = jax.random.split(jax.random.PRNGKey(3), 3)
    ct = jax.random.normal(keys[0], conv(lax.conv_general_dilated, x, w).shape)
    v = (jax.random.normal(keys[1], x.shape), jax.random.normal(keys[2], w.shape))

    def products(fn):
        loss = lambda x, w: jnp.sum(jnp.tanh(conv(fn, x, w)) * ct)
        grad = jax.grad(loss, (0, 1))
        forward_over_reverse = jax.jvp(lambda *xw: grad(*xw), (x, w), v)[1]
        reverse_over_reverse = jax.grad(
            lambda x, w: sum(jnp.vdot(g, u) for g, u in zip(grad(x, w), v)), (0, 1))(x, w)
        return forward_over_reverse + reverse_over_reverse

    for got, want in zip(products(conv_general_dilated), products(lax.conv_general_dilated)):
        _close(got, want)


def test_in_a_switch_a_scan_and_under_vmap():
    conv, x, w = _form((3, 3), (1, 1), 1, 1, 1)
    ws = jnp.stack([w, -0.5 * w])
    v = jax.random.normal(jax.random.PRNGKey(4), ws.shape)

    def loss(fn, ws, x):
        def body(h, w):  # the second branch of the switch is the one taken
            return lax.switch(1, [lambda: h, lambda: jnp.tanh(conv(fn, h, w))]), None
        return jnp.sum(lax.scan(body, x, ws)[0] ** 2)

    def hvp(fn):
        return jax.jit(lambda ws, x: jax.jvp(lambda ws: jax.grad(loss, 1)(fn, ws, x),
                                             (ws,), (v,))[1])(ws, x)

    _close(hvp(conv_general_dilated), hvp(lax.conv_general_dilated))
    xs = jnp.stack([x, 2 * x])
    for batched in (jax.vmap(lambda x: conv(conv_general_dilated, x, w))(xs),
                    jax.vmap(lambda x, w: conv(conv_general_dilated, x, w))(xs, ws)):
        assert batched.shape[0] == 2
    _close(batched[1], conv(lax.conv_general_dilated, 2 * x, -0.5 * w))
    _close(jax.vmap(lambda x: conv(conv_general_dilated, x, w))(xs)[1],
           conv(lax.conv_general_dilated, 2 * x, w))


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="XLA:CPU's convolution forms")
@pytest.mark.parametrize("fn,canonical", [(conv_general_dilated, True),
                                          (lax.conv_general_dilated, False)],
                         ids=["canonical", "xla"])
def test_a_gradient_in_a_loop_body_keeps_canonical_convolutions(fn, canonical):
    conv, x, w = _form((3, 3), (1, 1), 1, 1, 1)

    def loss(ws, x):
        return jnp.sum(lax.scan(lambda h, w: (jnp.tanh(conv(fn, h, w)), None), x, ws)[0] ** 2)

    hlo = jax.jit(jax.grad(loss)).lower(jnp.stack([w, w]), x).compile().as_text()
    forms = set(re.findall(r"convolution\(.*dim_labels=(\S+?),", hlo))
    assert forms and (forms == {"b01f_01io->b01f"}) == canonical, forms

"""A cell's edges traced once: the mixed edges of one shape applied by ``lax.scan``.

An 8-cell DARTS supernet has 112 mixed edges of 7 operations each and no two cells of one shape
to scan (``scan_cells``); unrolled, its program took over 15 minutes to compile on a 2-core CPU
and over 3 on a GPU. Within a cell every edge holds the same operations: in a normal cell all of
them map [B, H, W, C] to [B, H, W, C], in a reduction cell those leaving the cell inputs halve
the resolution and the others keep it. ``scan_edges`` applies a run of such edges as one
``lax.scan`` whose body is one edge, reading its input from a buffer of the cell's nodes and
adding its output to its destination's slot:

    buffer[dst_e] += edge_e(source[src_e], weights[e])   for e in order,

where ``source`` is the buffer itself when the edges keep the resolution, so that an edge reads a
node that earlier edges of the scan completed (the edges are ordered by destination). The
edges' variables stay under their own names (``edge_{dst}_{src}/...``): they are stacked when
the cell is applied and updated batch statistics are written back per edge, as in
``scan_cells``. Each edge's input passes a ``derivative_barrier``: without it XLA:CPU fused the
edge's whole input cotangent (every operation's, the taps of the depthwise convolutions among
them) into the in-place update of the buffer's cotangent, a slow loop: the 8-cell DARTS
supernet's gradient took 6.4 s without the barrier and 5.3 s with it (``BENCHMARKS.md``).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from jaxnas.spaces.fusion import derivative_barrier
from jaxnas.spaces.scan_cells import apply_in_loop, stacked_variables, write_back_batch_stats


def scan_edges(parent: nn.Module, edge: nn.Module, names: tuple[str, ...], srcs, dsts,
               weights, buffer, source=None, *, train: bool, remat: bool = False):
    """The edges ``names`` of ``parent`` (children of one structure, each an ``edge``, an unbound
    module called ``edge(x, weights, train)``) applied in order: edge e adds its output to
    ``buffer[dsts[e]]`` from input ``source[srcs[e]]`` (``buffer[srcs[e]]`` when ``source`` is
    None). buffer: [nodes, B, H', W', C]; source: [inputs, B, H, W, C]; weights: [E, K].
    ``remat``: the backward pass keeps each edge's input only and recomputes the rest (which
    saves memory on the CPU too, where a cell rematerialized in one program saved none; here
    the recomputation runs in the backward loop). Returns the buffer."""
    variables = stacked_variables(parent, names)
    update = (train and parent.is_mutable_collection("batch_stats")
              and "batch_stats" in variables)

    def apply(edge_variables, x, w):
        return apply_in_loop(edge, edge_variables, x, w, train, update=update)

    if remat:
        apply = jax.checkpoint(apply)

    def body(buffer, xs):
        edge_variables, src, dst, w = xs
        x = derivative_barrier(
            lax.dynamic_index_in_dim(buffer if source is None else source, src, keepdims=False))
        y, state = apply(edge_variables, x, w)
        total = lax.dynamic_index_in_dim(buffer, dst, keepdims=False) + y
        return lax.dynamic_update_index_in_dim(buffer, total, dst, 0), state

    xs = (variables, jnp.asarray(srcs, jnp.int32), jnp.asarray(dsts, jnp.int32), weights)
    buffer, stats = jax.lax.scan(body, buffer, xs)
    if update:
        write_back_batch_stats(parent, names, stats)
    return buffer

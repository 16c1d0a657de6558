"""Identical cells traced once: a stage's cells applied by ``lax.scan`` over their variables.

XLA's compile time grows faster than the program, and an unrolled supernet holds one copy of
its cell per layer. ``scan_cells`` applies a run of cells of one shape (same module, same input
and output shape: an NB201 stage) as one ``lax.scan`` whose body is the cell, over the cells'
variables stacked along a new leading axis. The variables stay where the unrolled network keeps
them (``{name: ...}`` per cell), so parameter paths, checkpoints and weight inheritance do not
change: they are stacked when the network is applied, and updated batch statistics are written
back under each cell's name.

XLA's CPU backend compiles a gradient's convolutions inside a loop body as generic loop nests,
so the cells' convolutions are ``jaxnas.spaces.canonical_conv``'s, whose derivatives are forward
convolutions, and on the CPU their depthwise ones taps (``jaxnas.spaces.depthwise``):
``apply_in_loop``, shared with ``scan_edges`` (``BENCHMARKS.md`` has what a scanned stage costs
and saves on CPU).
"""

import flax.linen as nn
import jax

from jaxnas.spaces.ops import canonical_convs, depthwise_taps
from jaxnas.trees import tree_index, tree_stack


def scan_cells(parent: nn.Module, cell: nn.Module, names: tuple[str, ...], x, *args,
               train: bool, remat: bool = False):
    """``x`` through the cells ``names`` of ``parent`` in order, each ``cell`` (an unbound
    module whose call is ``cell(x, *args, train)`` -> an array of x's shape) with its own
    variables; ``args`` are shared by every cell. x: [B, H, W, C] -> [B, H, W, C].

    At initialization the cells are called one by one (creating their variables under
    ``names``); ``remat``: each cell's activations are recomputed in the backward pass.
    """
    if parent.is_initializing():
        for name in names:
            x = cell.clone(name=name, parent=parent)(x, *args, train)
        return x
    variables = stacked_variables(parent, names)
    update = train and parent.is_mutable_collection("batch_stats")

    def body(x, cell_variables):
        return apply_in_loop(cell, cell_variables, x, *args, train, update=update)

    x, stats = jax.lax.scan(jax.checkpoint(body) if remat else body, x, variables)
    if update:
        write_back_batch_stats(parent, names, stats)
    return x


def apply_in_loop(module: nn.Module, variables, *args, update: bool):
    """``module.apply(variables, *args)`` as a loop body runs it: with canonical convolutions
    and depthwise taps. -> (output, the new batch statistics when ``update``, else None)."""
    with canonical_convs(), depthwise_taps():
        if not update:
            return module.apply(variables, *args), None
        y, state = module.apply(variables, *args, mutable=["batch_stats"])
    return y, state["batch_stats"]


def stacked_variables(parent: nn.Module, names: tuple[str, ...]) -> dict:
    """``{collection: the variables of parent's children names, stacked along a new axis 0}``
    for every collection of ``parent`` that holds them."""
    return {col: tree_stack([tree[name] for name in names])
            for col, tree in parent.variables.items() if names[0] in tree}


def write_back_batch_stats(parent: nn.Module, names: tuple[str, ...], stats) -> None:
    """Puts the stacked batch statistics ``stats`` (axis 0 over ``names``) back under each
    child's name."""
    for i, name in enumerate(names):
        parent.put_variable("batch_stats", name, tree_index(stats, i))

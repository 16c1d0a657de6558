"""NAS-Bench-201 as a black-box environment: a jit-able accuracy oracle over op indices.

A cell is ``ops`` int[6]: one index into ``NB201_OPS`` (none, skip_connect, nor_conv_1x1,
nor_conv_3x3, avg_pool_3x3) per edge, in the arch-string edge order (1<-0), (2<-0), (2<-1),
(3<-0), (3<-1), (3<-2) -- the ``ops`` column of the CSV table and the argmax rows of Alg. 3
(spec 001, section 2.0). Its *code* is the base-5 number with the first edge most significant
(``int(ops_column, 5)``), 0..15624. The oracle holds three dense float32 arrays of 5^6 entries,
indexed by the code, so a lookup is one gather:

- ``search``: the metric a search optimizes (``metric``: "val" or "test" after 200 epochs; also
  "val_12" / "test_12", the 12-epoch values NAS-Bench-201's own baselines searched on, and
  "nats_test");
- ``val`` and ``test``: the 200-epoch validation and test accuracy, what Table 4.1 reports for
  the final cell. CIFAR-10 val is ``cifar10-valid``'s x-valid and test is ``cifar10``'s ori-test
  (spec 001, ambiguity 20; the table's ``c10_val_200`` / ``c10_test_200``).

Accuracies are in % (the table's unit). A cell with an op index outside 0..4 looks up NaN.
``NB201Oracle`` is a pytree (the arrays are leaves, the names static), so it can be an argument
of a jitted function as well as a closed-over constant.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.benchmarks.nb201 import (DATASETS, METRICS, NUM_CELLS, NB201Table, column_name,
                                     parse_arch_str)
from jaxnas.spaces.genotypes import NB201_EDGES, NB201Genotype
from jaxnas.spaces.ops import NB201_OPS

NUM_EDGES = len(NB201_EDGES)  # 6
NUM_OPS = len(NB201_OPS)  # 5
SEARCH_METRICS = METRICS
"""The search metrics an oracle accepts (see ``jaxnas.benchmarks.column_name``)."""

CODE_PLACES = NUM_OPS ** np.arange(NUM_EDGES - 1, -1, -1)
"""The base-5 place value of each edge (5^5 .. 5^0): ``code = ops @ CODE_PLACES``."""


class OracleResult(NamedTuple):
    """Accuracies in % of a cell or a batch: ``search`` (the search metric), ``val``, ``test``."""

    search: jax.Array
    val: jax.Array
    test: jax.Array


def cell_code(ops) -> jax.Array:
    """int32[...]: the base-5 code of cells ``ops`` int[..., 6] (edge 0 most significant).
    Only meaningful when every op is in 0..4 (``valid_cells``)."""
    ops = jnp.asarray(ops)
    _check_cells(ops.shape)
    return jnp.sum(ops.astype(jnp.int32) * jnp.asarray(CODE_PLACES, jnp.int32), axis=-1)


def code_cell(code) -> jax.Array:
    """int32[..., 6]: the cells of base-5 codes int[...] (the inverse of ``cell_code``)."""
    code = jnp.asarray(code, jnp.int32)[..., None]
    return (code // jnp.asarray(CODE_PLACES, jnp.int32)) % NUM_OPS


def valid_cells(ops) -> jax.Array:
    """bool[...]: whether every op of ``ops`` int[..., 6] is an index of ``NB201_OPS``."""
    ops = jnp.asarray(ops)
    _check_cells(ops.shape)
    return jnp.all((ops >= 0) & (ops < NUM_OPS), axis=-1)


def cell_arch_str(ops) -> str:
    """The NB201 arch string of one cell ``ops`` int[6] (host)."""
    ops = np.asarray(ops)
    if ops.shape != (NUM_EDGES,) or not np.all((ops >= 0) & (ops < NUM_OPS)):
        raise ValueError(f"an NB201 cell is {NUM_EDGES} op indices in 0..{NUM_OPS - 1} (edge "
                         f"order of the arch string), got {ops.tolist()}")
    return NB201Genotype(tuple(NB201_OPS[i] for i in ops.tolist())).arch_str


@jax.tree_util.register_pytree_node_class
class NB201Oracle:
    """The accuracies of all 15,625 NB201 cells for one dataset and search metric.

    Build it with ``NB201Oracle.load(path, dataset, metric)`` or ``from_table(table, dataset,
    metric)``; ``from_arrays`` makes a synthetic oracle (tests). Attributes: ``search``,
    ``val``, ``test`` float32[15625] indexed by ``cell_code``; ``dataset``, ``metric``, ``name``.
    """

    def __init__(self, search, val, test, *, dataset: str = "synthetic",
                 metric: str = "val", name: str | None = None):
        self.search, self.val, self.test = search, val, test
        self.dataset, self.metric = dataset, metric
        self.name = name or f"NB201 {dataset} ({metric})"

    # -- pytree -------------------------------------------------------------------------------
    def tree_flatten(self):
        return (self.search, self.val, self.test), (self.dataset, self.metric, self.name)

    @classmethod
    def tree_unflatten(cls, aux, children):
        dataset, metric, name = aux
        return cls(*children, dataset=dataset, metric=metric, name=name)

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path, dataset: str = "cifar10",
             metric: str = "val") -> "NB201Oracle":
        """The oracle of the CSV table at ``path`` (``NB201Table.load``: a FileNotFoundError
        that says how to get the table when there is none)."""
        _check_names(dataset, metric)
        return cls.from_table(NB201Table.load(path), dataset, metric)

    @classmethod
    def from_table(cls, table: NB201Table, dataset: str = "cifar10",
                   metric: str = "val") -> "NB201Oracle":
        """The oracle of a loaded table; it must hold every cell (a partial table raises)."""
        _check_names(dataset, metric)
        if len(table) != NUM_CELLS:
            raise ValueError(f"an NB201Oracle needs all {NUM_CELLS} cells, since a search may "
                             f"query any of them; the {table.name} has {len(table)}. Load the "
                             f"full table.")
        codes = np.array([[NB201_OPS.index(op) for op in parse_arch_str(a)]
                          for a in table.arch_strs], dtype=np.int64) @ CODE_PLACES
        if len(np.unique(codes)) != NUM_CELLS:
            raise ValueError(f"the {table.name} lists some cell twice (as different arch "
                             f"strings of the same ops); cannot index it by cell")
        dataset = dataset.lower()

        def dense(name):
            out = np.empty(NUM_CELLS, np.float32)
            out[codes] = table.column(name)
            return jnp.asarray(out)

        where = f" from {table.source}" if table.source is not None else ""
        return cls(dense(column_name(dataset, metric)), dense(column_name(dataset, "val")),
                   dense(column_name(dataset, "test")), dataset=dataset, metric=metric,
                   name=f"NB201 {dataset} ({metric}){where}")

    @classmethod
    def from_arrays(cls, search, val=None, test=None, *, name: str = "synthetic",
                    metric: str = "val") -> "NB201Oracle":
        """A synthetic oracle: ``search`` (and ``val``, ``test``, default ``search``) float[15625]
        indexed by ``cell_code``, in %."""
        arrays = []
        for label, values in (("search", search), ("val", val), ("test", test)):
            values = np.asarray(search if values is None else values, np.float32)
            if values.shape != (NUM_CELLS,):
                raise ValueError(f"from_arrays: {label} must have shape ({NUM_CELLS},), one "
                                 f"value per cell code, got {values.shape}")
            if not np.all(np.isfinite(values)):
                raise ValueError(f"from_arrays: {label} has NaN or infinite values")
            arrays.append(jnp.asarray(values))
        return cls(*arrays, dataset="synthetic", metric=metric, name=name)

    # -- lookups (jit-able, batched over leading dimensions) ----------------------------------
    def _gather(self, table, ops):
        ops = jnp.asarray(ops)
        code = jnp.clip(cell_code(ops), 0, NUM_CELLS - 1)
        return jnp.where(valid_cells(ops), table[code], jnp.nan)

    def search_accuracy(self, ops) -> jax.Array:
        """float32[...]: the search metric of cells ``ops`` int[..., 6] (NaN outside the space)."""
        return self._gather(self.search, ops)

    def val_accuracy(self, ops) -> jax.Array:
        """float32[...]: the 200-epoch validation accuracy of cells ``ops`` int[..., 6]."""
        return self._gather(self.val, ops)

    def test_accuracy(self, ops) -> jax.Array:
        """float32[...]: the 200-epoch test accuracy of cells ``ops`` int[..., 6]."""
        return self._gather(self.test, ops)

    def __call__(self, ops) -> OracleResult:
        """``OracleResult(search, val, test)`` of cells ``ops`` int[..., 6]."""
        return OracleResult(self.search_accuracy(ops), self.val_accuracy(ops),
                            self.test_accuracy(ops))

    def bare(self) -> "NB201Oracle":
        """The same arrays without the names: pass this to a jitted function so that oracles of
        different datasets and metrics share its compilation (names are static pytree data)."""
        return NB201Oracle(self.search, self.val, self.test, dataset="", metric="", name="bare")

    # -- host helpers -------------------------------------------------------------------------
    def best(self, metric: str = "search") -> tuple[np.ndarray, OracleResult]:
        """``(ops int[6], its OracleResult)`` of the cell with the highest ``metric`` ("search",
        "val" or "test"; the lowest code on ties)."""
        if metric not in ("search", "val", "test"):
            raise ValueError(f"best: metric must be 'search', 'val' or 'test', got {metric!r}")
        code = int(np.argmax(np.asarray(getattr(self, metric))))
        ops = np.asarray(code_cell(code))
        return ops, OracleResult(*(float(np.asarray(a)[code])
                                   for a in (self.search, self.val, self.test)))

    @property
    def optimum(self) -> dict:
        """``{"val": max val, "test": max test}`` over all cells (Table 4.1's "Optimal" row)."""
        return {"val": float(jnp.max(self.val)), "test": float(jnp.max(self.test))}

    def __repr__(self):
        return f"NB201Oracle({self.name})"


def _check_names(dataset, metric):
    if not isinstance(dataset, str) or dataset.lower() not in DATASETS:
        raise ValueError(f"unknown NB201 dataset {dataset!r}; use one of {tuple(DATASETS)}")
    if metric not in SEARCH_METRICS:
        raise ValueError(f"unknown NB201 search metric {metric!r}; use one of {SEARCH_METRICS} "
                         f"('val' or 'test': 200 epochs; '_12': 12 epochs)")


def _check_cells(shape):
    if len(shape) < 1 or shape[-1] != NUM_EDGES:
        raise ValueError(f"NB201 cells must have shape [..., {NUM_EDGES}] (one op index per "
                         f"edge), got {list(shape)}")

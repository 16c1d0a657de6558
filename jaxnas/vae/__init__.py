"""The graph variational autoencoder of E²NAS (Zhang thesis ch. 4): cells as DAGs with the
operations on the vertices (NAS-Bench-201: ``dag``; the DARTS space: ``darts_dag``; how a
search reads decodings back as cells: ``codecs``), a D-VAE-style encoder and decoder, and the
injectivity check.

Training and loading a trained VAE (``jaxnas.vae.train``: ``train_vae``, ``load_vae``) use the
engine's checkpoints and workdir, so they are not imported here: a strategy may import this
package without importing the engine.
"""

from jaxnas.vae.dag import (NB201_DAG_ADJ, NB201_END, NB201_NUM_CELLS, NB201_NUM_VERTICES,
                            NB201_START, Dag, dag_to_nb201, nb201_cells, nb201_dags,
                            nb201_op_indices, nb201_problem, nb201_to_dag)
from jaxnas.vae.darts_dag import (DARTS_CHAIN, DARTS_DAG_NUM_OPS, DARTS_DAG_OPS, DARTS_END,
                                  DARTS_INPUT, DARTS_NUM_VERTICES, DARTS_START, dag_to_darts,
                                  darts_dags, darts_depth, darts_problem, darts_to_dag,
                                  op_vertices, sample_darts_cells, source_vertices)
from jaxnas.vae.evaluate import decode_prior, injectivity, min_pairwise_distance
from jaxnas.vae.model import DVAE, DagProbs, ElboTerms, edge_decisions, init_params

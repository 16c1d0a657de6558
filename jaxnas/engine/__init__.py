"""The loops: search and retraining under jit and data parallelism, checkpoints, logging.

``search(config, workdir)`` runs an architecture search, ``train(config, genotype, workdir)``
retrains a genotype from scratch; both resume from the workdir's last checkpoint.
"""

from jaxnas.engine.search_loop import SearchResult, SearchSetup, build, load_search, search
from jaxnas.engine.train_loop import TrainResult, train

"""The loops: search and retraining under jit and data parallelism, checkpoints, logging."""

from jaxnas.engine.search import SearchResult, search

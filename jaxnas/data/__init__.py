"""Datasets, the search split, deterministic batches, augmentation and device sharding."""

from jaxnas.data.augment import normalize, preprocess
from jaxnas.data.pipeline import BatchStream, search_split
from jaxnas.data.sharding import (batch_sharding, check_batch_size, data_mesh, local_rows,
                                  replicated, to_global)
from jaxnas.data.sources import ImageDataset, load_dataset

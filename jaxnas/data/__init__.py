"""Datasets, the search split, deterministic batches, augmentation and device sharding."""

from jaxnas.data.arrayrecord import write_arrayrecord
from jaxnas.data.augment import normalize, preprocess
from jaxnas.data.pipeline import (BatchStream, EvalReader, StepReader, padded_batches,
                                  search_split, step_indices)
from jaxnas.data.sharding import (batch_sharding, check_batch_size, data_mesh, local_rows,
                                  replicated, to_global)
from jaxnas.data.sources import ImageDataset, load_dataset
from jaxnas.data.streaming import PIPELINES, check_pipeline, loader, open_streaming

"""A small ArrayRecord set for tests of the streaming pipeline, whose pixels name the records."""

import numpy as np

from jaxnas.data import write_arrayrecord


def write_mini(directory, num_train: int = 40, num_test: int = 10, classes: int = 5,
                      shapes=None) -> str:
    """The tfds dataset ``mini`` in ``directory``: train record i has an 8x8 RGB image (or one
    of ``shapes[i]``) whose every pixel is i, so that a pixel names the record, and label
    i % classes; test record i has pixels 200 + i and label i % classes. Returns ``directory``
    (a string), for ``arrayrecord:DIR``."""
    train = ((np.full((shapes[i] if shapes else (8, 8)) + (3,), i, np.uint8), i % classes)
             for i in range(num_train))
    test = ((np.full((8, 8, 3), 200 + i, np.uint8), i % classes) for i in range(num_test))
    return write_arrayrecord(str(directory), "mini", {"train": train, "test": test}, classes)

"""Writing image classification sets as tfds ArrayRecord directories, which the streaming
pipeline reads as ``arrayrecord:DIR`` (``jaxnas.data.streaming``).

``write_arrayrecord(directory, name, splits, num_classes)`` writes one ArrayRecord shard per split
(``NAME-SPLIT.array_record-00000-of-00001``: each record a serialized ``tf.train.Example`` of a
PNG-encoded ``image`` and a ``label``, the format of ``tfds build --file_format=array_record``) and
tfds's ``features.json`` and ``dataset_info.json`` beside them. Needs neither TensorFlow nor the
whole set in memory: ``splits`` may yield the examples one by one.
"""

import io
import os

import numpy as np


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image).save(buffer, "PNG")
    return buffer.getvalue()


def write_arrayrecord(directory: str, name: str, splits: dict, num_classes: int,
                  channels: int = 3) -> str:
    """Writes ``splits`` (``{"train": examples, "test": examples}``, each an iterable of
    ``(image uint8 [H, W, channels], label int)``; images may differ in size) to ``directory``
    as the tfds dataset ``name``. Returns ``directory``."""
    import tensorflow_datasets as tfds
    from array_record.python.array_record_module import ArrayRecordWriter

    os.makedirs(directory, exist_ok=True)
    features = tfds.features.FeaturesDict({
        "image": tfds.features.Image(shape=(None, None, channels)),
        "label": tfds.features.ClassLabel(num_classes=num_classes)})
    template = "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}"
    infos = []
    for split, examples in splits.items():
        path = os.path.join(directory, f"{name}-{split}.array_record-00000-of-00001")
        writer = ArrayRecordWriter(path, "group_size:1")  # one record a chunk: fast random reads
        count = 0
        for image, label in examples:
            image = np.asarray(image, np.uint8)
            image = image[..., None] if image.ndim == 2 else image
            writer.write(features.serialize_example({"image": _png(image), "label": int(label)}))
            count += 1
        writer.close()
        infos.append(tfds.core.SplitInfo(
            name=split, shard_lengths=[count], num_bytes=os.path.getsize(path),
            filename_template=tfds.core.ShardedFileTemplate(
                data_dir=directory, template=template, dataset_name=name,
                filetype_suffix="array_record")))
    tfds.folder_dataset.write_metadata(data_dir=directory, features=features, split_infos=infos,
                                       filename_template=template, check_data=False)
    return directory

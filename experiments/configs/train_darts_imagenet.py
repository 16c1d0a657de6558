"""Retraining a DARTS-space cell on ImageNet, mobile setting: DARTS's ImageNet protocol. 14
cells, C=48, the ImageNet stem, 224x224 images, auxiliary head (0.4), label smoothing 0.1, SGD
lr 0.1 decayed by 0.97 every epoch, weight decay 3e-5, batch 128, 250 epochs, no drop-path.
Amended-DARTS (004, section 4) uses --config.space.C=42 --config.optim_w.schedule=linear
--config.optim_w.lr=0.5.

ImageNet does not fit in memory: the images stream from ArrayRecord files through grain
(config.data_pipeline="grain", README "Streaming data"), each resized (shorter side 224) and
centre-cropped to 224x224 on the host, then pad-crop + flip on the device (in place of DARTS's
random-resized crops and colour jitter). Prepare tfds's imagenet2012 once (the ILSVRC2012 tars in
DATA_DIR/downloads/manual) with `tfds build imagenet2012 --file_format=array_record
--data_dir=DATA_DIR` and pass --config.data_dir=DATA_DIR; or point
--config.dataset=arrayrecord:DIR at such a directory. A few steps at a tiny size on tfds's mock
data (tests/test_streaming.py):

    python -m experiments.train --genotype=DARTS_V2 \
        --config=experiments/configs/train_darts_imagenet.py --workdir=runs/imagenet \
        --config.data_workers=4
"""

from experiments.configs import train_darts_cifar


def get_config():
    c = train_darts_cifar.get_config()
    c.dataset = "tfds:imagenet2012"
    c.data_pipeline = "grain"
    c.image_size = 224
    c.space.update(C=48, layers=14)
    c.imagenet_stem = True
    c.aux_weight = 0.4
    c.drop_path = 0.0
    c.label_smoothing = 0.1
    c.cutout = 0
    c.batch_size = 128
    c.epochs = 250
    c.optim_w.update(schedule="exponential", lr=0.1, decay=0.97, weight_decay=3e-5)
    c.eval_every = 1
    c.checkpoint_every = 2000
    return c

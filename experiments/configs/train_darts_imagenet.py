"""Retraining a DARTS-space cell on ImageNet, mobile setting: DARTS's ImageNet protocol. 14
cells, C=48, the ImageNet stem, 224x224 images, auxiliary head (0.4), label smoothing 0.1, SGD
lr 0.1 decayed by 0.97 every epoch, weight decay 3e-5, batch 128, 250 epochs, no drop-path.
Amended-DARTS (004, section 4) uses --config.space.C=42 --config.optim_w.schedule=linear
--config.optim_w.lr=0.5.

tfds's imagenet2012 needs the ILSVRC2012 tars in DATA_DIR/downloads/manual and
--config.data_dir=DATA_DIR. The in-memory pipeline cannot hold ImageNet, so `train` refuses
tfds:imagenet2012 (see jaxnas/engine/train_loop.py); the config is tested for shapes (one train step
under jax.eval_shape on 224x224 batches). An npz of images pre-resized to a fixed size
(--config.dataset=npz:PATH) runs with pad-crop + flip in place of random-resized crops.
"""

from experiments.configs import train_darts_cifar


def get_config():
    c = train_darts_cifar.get_config()
    c.dataset = "tfds:imagenet2012"
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

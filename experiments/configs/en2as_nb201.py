"""EN²AS on NAS-Bench-201, CIFAR-10 (Zhang thesis ch. 2): the NB201 supernet (C=16, N=5) trained
one path per step with RandomNAS's optimizer settings (``randomnas_nb201.py``: 250 epochs, batch
64, SGD 0.025 cosine to 0.001, Nesterov momentum 0.9, wd 5e-4, clip 5); S=1000 random warm-up
paths, then novelty ES with n=10 perturbations, sigma=1, gamma=0.01 and k=10 (the authors' code,
spec 1.4; the thesis gives none of them); selection by regularized evolution on the supernet's val
accuracy. Table 2.3: EN²AS 93.36±0.3 CIFAR-10 test, Kendall tau 0.228±0.066, s-tau 0.333.

    python -m experiments.search --config=experiments/configs/en2as_nb201.py --workdir=runs/en2as_nb201
"""

from experiments.configs import randomnas_nb201


def get_config():
    c = randomnas_nb201.get_config()
    c.strategy.name = "en2as"
    c.strategy.archive_size = 1000
    c.strategy.num_perturbations = 10
    c.strategy.sigma = 1.0
    c.strategy.gamma = 0.01
    c.strategy.k = 10
    c.strategy.distance = "edge_match"
    return c

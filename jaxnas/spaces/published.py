"""Published genotypes, by name, for retraining and as fixtures.

Each entry says where its genes come from and how they were read. The cells of the five seed
papers are printed only as figures, whose edge labels the text does not carry; the one seed cell
here (TND-NAS) comes from its author's public code and is identified with the paper's figure by
the parameter counts the paper prints. ``tests/test_published_genotypes.py`` checks the published
counts quoted below against the network ``darts_network`` builds (20 cells, 10 classes and no
auxiliary head on CIFAR; 14 cells, C=48, 1000 classes, 224x224 on ImageNet).

Left out because the text does not determine them: the EN2AS, NSAS, NSAS-C, E2NAS, E2NAS-R,
BaLeNAS and iDARTS cells (Zhang thesis, Figs. 2.1, 3.3, 4.5, 5.3, 6.3), the DDAS / CADAM cells
(Mills thesis, Figs. 3.8, 3.9, 4.4), the constrained-DARTS cells (Maile et al., Figs. 1, 4, S2-S5),
the Amended-DARTS S_1 and S_2 cells (Fig. 3), and the TND-NAS CIFAR-10 M, CIFAR-100 and Fig. 8/9
cells.
"""

from jaxnas.spaces.genotypes import DartsGenotype

_CONCAT = (2, 3, 4, 5)

# DARTS (Liu et al., ICLR 2019), first and second order: the original code's genotypes.py.
# 3,169,414 and 3,349,342 parameters at C=36; with the auxiliary head 3.65M and 3.83M (3.77M and
# 3.95M with 100 classes), as in Mills's thesis, Table 3.1. The DARTS paper prints 3.3M for both.
DARTS_V1 = DartsGenotype(
    normal=(("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 0), ("sep_conv_3x3", 1),
            ("skip_connect", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2)),
    normal_concat=_CONCAT,
    reduce=(("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 0),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("avg_pool_3x3", 0)),
    reduce_concat=_CONCAT,
)

DARTS_V2 = DartsGenotype(
    normal=(("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)),
    normal_concat=_CONCAT,
    reduce=(("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)),
    reduce_concat=_CONCAT,
)

# P-DARTS (Chen et al., ICCV 2019), searched on CIFAR-10: `PDARTS` in the authors' genotypes.py
# (github.com/chenxin061/pdarts). A baseline in TND-NAS Table V, Amended-DARTS Tables 1-2, and the
# Zhang and Mills theses. 3,433,798 parameters at C=36 (printed 3.4M); 4.9M on ImageNet.
PDARTS = DartsGenotype(
    normal=(("skip_connect", 0), ("dil_conv_3x3", 1), ("skip_connect", 0), ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1), ("sep_conv_3x3", 3), ("sep_conv_3x3", 0), ("dil_conv_5x5", 4)),
    normal_concat=_CONCAT,
    reduce=(("avg_pool_3x3", 0), ("sep_conv_5x5", 1), ("sep_conv_3x3", 0), ("dil_conv_5x5", 2),
            ("max_pool_3x3", 0), ("dil_conv_3x3", 1), ("dil_conv_3x3", 1), ("dil_conv_5x5", 3)),
    reduce_concat=_CONCAT,
)

# PC-DARTS (Xu et al., ICLR 2020), searched on CIFAR-10 and on ImageNet: `PC_DARTS_cifar` and
# `PC_DARTS_image` in the authors' genotypes.py (github.com/yuhuixu1993/PC-DARTS). Baselines in
# Amended-DARTS Tables 1-2 and the Zhang and Mills theses. CIFAR-10 cell: 3.6M parameters at C=36;
# on ImageNet both cells have 5.3M.
PC_DARTS_CIFAR = DartsGenotype(
    normal=(("sep_conv_3x3", 1), ("skip_connect", 0), ("sep_conv_3x3", 0), ("dil_conv_3x3", 1),
            ("sep_conv_5x5", 0), ("sep_conv_3x3", 1), ("avg_pool_3x3", 0), ("dil_conv_3x3", 1)),
    normal_concat=_CONCAT,
    reduce=(("sep_conv_5x5", 1), ("max_pool_3x3", 0), ("sep_conv_5x5", 1), ("sep_conv_5x5", 2),
            ("sep_conv_3x3", 0), ("sep_conv_3x3", 3), ("sep_conv_3x3", 1), ("sep_conv_3x3", 2)),
    reduce_concat=_CONCAT,
)

PC_DARTS_IMAGENET = DartsGenotype(
    normal=(("skip_connect", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 0), ("skip_connect", 1),
            ("sep_conv_3x3", 1), ("sep_conv_3x3", 3), ("sep_conv_3x3", 1), ("dil_conv_5x5", 4)),
    normal_concat=_CONCAT,
    reduce=(("sep_conv_3x3", 0), ("skip_connect", 1), ("dil_conv_5x5", 2), ("max_pool_3x3", 1),
            ("sep_conv_3x3", 2), ("sep_conv_3x3", 1), ("sep_conv_5x5", 0), ("sep_conv_3x3", 3)),
    reduce_concat=_CONCAT,
)

# TND-NAS (Lyu et al., arXiv 2111.03892), the CIFAR-10 cell of Fig. 3 ("CIFAR10-S"). The figure's
# labels are not in the text; the genes are `SEARCH_TEST_20210702_112143` of the author's P-DARTS
# fork (github.com/blyucs/pdarts, genotypes.py, 2021-07-07), written there as (op, input) pairs in
# edge order with the `none` edges dropped and "conv 1x1" / "conv 3x3" for conv_1x1 / conv_3x3.
# The node of each gene follows from that order: within a node the inputs increase, so a new node
# starts wherever the input index does not (normal: inputs 0,1 | 0,1 | 0,1,3 | 0,1,3; reduce:
# 0,1 | 0,1,2 | 0,1,2,3 | 0,1,2,3), and with four nodes this split is the only one. Identified with
# Fig. 3 by the counts the paper prints, which it truncates: 1,099,034 parameters at C=16 ("1.09M",
# Fig. 3 and Table V, model S), 2,433,634 at C=24 (the abstract's "2.4M") and 9,577,786 at C=48
# (Table V's "9.57M", model L; the paper does not print L's width). Its notes (EXP.MD, items 38
# and 52) train this genotype at 16 and 24 channels. The fork's public model.py is P-DARTS's,
# which would read the 10 normal genes as five two-input nodes; parameter counts cannot tell the
# two wirings apart (an operation's parameters depend only on its op and stride), so which one
# the paper's accuracies were trained with is not established; this is the one the paper
# describes (no in-degree limit, an edge removed only when its op is `none`).
TND_NAS_CIFAR10_S = DartsGenotype(
    normal=(("sep_conv_3x3", 0, 2), ("conv_1x1", 1, 2),
            ("skip_connect", 0, 3), ("conv_3x3", 1, 3),
            ("conv_1x1", 0, 4), ("conv_1x1", 1, 4), ("sep_conv_3x3", 3, 4),
            ("conv_1x1", 0, 5), ("conv_3x1_1x3", 1, 5), ("dil_conv_3x3", 3, 5)),
    normal_concat=_CONCAT,
    reduce=(("max_pool_3x3", 0, 2), ("max_pool_5x5", 1, 2),
            ("max_pool_5x5", 0, 3), ("max_pool_3x3", 1, 3), ("max_pool_5x5", 2, 3),
            ("max_pool_5x5", 0, 4), ("max_pool_3x3", 1, 4), ("skip_connect", 2, 4),
            ("max_pool_5x5", 3, 4),
            ("max_pool_3x3", 0, 5), ("skip_connect", 1, 5), ("avg_pool_3x3", 2, 5),
            ("max_pool_3x3", 3, 5)),
    reduce_concat=_CONCAT,
)

PUBLISHED = {
    "DARTS_V1": DARTS_V1,
    "DARTS_V2": DARTS_V2,
    "PDARTS": PDARTS,
    "PC_DARTS_CIFAR": PC_DARTS_CIFAR,
    "PC_DARTS_IMAGENET": PC_DARTS_IMAGENET,
    "TND_NAS_CIFAR10_S": TND_NAS_CIFAR10_S,
}

"""An independent PyTorch implementation of the NAS-Bench-201 and DARTS supernets and of the
search steps jaxnas runs, for ``experiments/bench_vs_torch.py`` only (never imported by ``jaxnas`` or the
tests; needs ``pip install -e ".[bench]"``).

The supernet has jaxnas's shapes and work: stem conv 3x3 + BN, three stages of N cells (C, 2C,
4C channels) joined by residual reduction blocks, BN + ReLU, global average pool, linear. Each
of a cell's six edges sums ``w_k op_k(x)`` over skip, ReLU-conv1x1-BN, ReLU-conv3x3-BN and 3x3
average pooling (``none`` adds zero and is not computed, as in jaxnas). The DARTS supernet is
DARTS's: stem conv 3x3 to 3C + BN, ``layers`` cells with reductions at 1/3 and 2/3, each cell's
inputs preprocessed to C channels, 14 mixed edges over DARTS's 8 operations (pooling followed by
a non-affine BN, separable and dilated convolutions, non-affine BNs), the concat of its 4 nodes,
global average pool, linear. Weights are SGD with
Nesterov momentum 0.9, weight decay 5e-4 and gradient clipping at 5 (NAS-Bench-201's DARTS
settings); alpha is Adam (3e-4, betas (0.5, 0.999), weight decay 1e-3).

A search step is an architecture update plus one weight update, and each method computes what
the original code computes (forward and backward passes counted in each function's docstring).
Gradients are taken with ``torch.autograd.grad`` for the tensors that need them only, as jaxnas's
``jax.grad`` does.
"""

import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in, c_out, kernel, stride, padding, affine):
        super().__init__(nn.ReLU(), nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False),
                         nn.BatchNorm2d(c_out, affine=affine))


class MixedEdge(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = ReLUConvBN(c, c, 1, 1, 0, affine=False)
        self.conv3 = ReLUConvBN(c, c, 3, 1, 1, affine=False)

    def forward(self, x, w):
        """x [B, C, H, W], w [5] (OPS order; ``none`` skipped)."""
        pool = F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
        return w[1] * x + w[2] * self.conv1(x) + w[3] * self.conv3(x) + w[4] * pool


class Cell(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.edges = nn.ModuleList(MixedEdge(c) for _ in EDGES)

    def forward(self, x, weights):
        nodes = [x]
        for dst in range(1, 4):
            nodes.append(sum(self.edges[e](nodes[src], weights[e])
                             for e, (src, d) in enumerate(EDGES) if d == dst))
        return nodes[3]


class ResNetBlock(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1, affine=True)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1, affine=True)
        self.downsample = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x):
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class NB201Supernet(nn.Module):
    def __init__(self, c=16, n=5, num_classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        layers = []
        for stage in range(3):
            width = c * 2 ** stage
            if stage:
                layers.append(ResNetBlock(width // 2, width))
            layers.extend(Cell(width) for _ in range(n))
        self.layers = nn.ModuleList(layers)
        self.last = nn.BatchNorm2d(4 * c)
        self.classifier = nn.Linear(4 * c, num_classes)

    def forward(self, x, alphas):
        weights = F.softmax(alphas[0], dim=-1)
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x, weights) if isinstance(layer, Cell) else layer(x)
        x = F.relu(self.last(x)).mean((2, 3))
        return self.classifier(x)


DARTS_OPS = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
             "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")


def _dw_pw(c, kernel, stride, padding, dilation):
    """ReLU, depthwise k x k conv, pointwise conv, non-affine BN."""
    return [nn.ReLU(), nn.Conv2d(c, c, kernel, stride, padding, dilation, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c, affine=False)]


class FactorizedReduce(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, 2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out - c_out // 2, 1, 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=False)

    def forward(self, x):
        x = F.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], 1))


class DartsMixedEdge(nn.Module):
    def __init__(self, c, stride):
        super().__init__()
        self.stride = stride
        self.pool_bn = nn.ModuleList(nn.BatchNorm2d(c, affine=False) for _ in range(2))
        self.skip = FactorizedReduce(c, c) if stride == 2 else nn.Identity()
        self.convs = nn.ModuleList([
            nn.Sequential(*_dw_pw(c, 3, stride, 1, 1), *_dw_pw(c, 3, 1, 1, 1)),
            nn.Sequential(*_dw_pw(c, 5, stride, 2, 1), *_dw_pw(c, 5, 1, 2, 1)),
            nn.Sequential(*_dw_pw(c, 3, stride, 2, 2)),
            nn.Sequential(*_dw_pw(c, 5, stride, 4, 2))])

    def forward(self, x, w):
        """x [B, C, H, W], w [8] (DARTS_OPS order; ``none`` skipped)."""
        out = w[1] * self.pool_bn[0](F.max_pool2d(x, 3, self.stride, 1))
        out = out + w[2] * self.pool_bn[1](F.avg_pool2d(x, 3, self.stride, 1,
                                                        count_include_pad=False))
        out = out + w[3] * self.skip(x)
        return out + sum(w[4 + i] * conv(x) for i, conv in enumerate(self.convs))


class DartsCell(nn.Module):
    def __init__(self, c_prev_prev, c_prev, c, reduction, reduction_prev):
        super().__init__()
        self.pre0 = (FactorizedReduce(c_prev_prev, c) if reduction_prev
                     else ReLUConvBN(c_prev_prev, c, 1, 1, 0, affine=False))
        self.pre1 = ReLUConvBN(c_prev, c, 1, 1, 0, affine=False)
        self.edges = nn.ModuleList(DartsMixedEdge(c, 2 if reduction and src < 2 else 1)
                                   for src, _ in _DARTS_EDGES)

    def forward(self, s0, s1, weights):
        nodes = [self.pre0(s0), self.pre1(s1)]
        for dst in range(2, 6):
            nodes.append(sum(self.edges[e](nodes[src], weights[e])
                             for e, (src, d) in enumerate(_DARTS_EDGES) if d == dst))
        return torch.cat(nodes[2:], 1)


_DARTS_EDGES = tuple((src, dst) for dst in range(2, 6) for src in range(dst))


class DartsSupernet(nn.Module):
    def __init__(self, c=16, layers=8, num_classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 3 * c, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(3 * c))
        self.reductions = (layers // 3, 2 * layers // 3)
        c_prev_prev, c_prev, width, reduction_prev = 3 * c, 3 * c, c, False
        cells = []
        for i in range(layers):
            reduction = i in self.reductions
            width = width * 2 if reduction else width
            cells.append(DartsCell(c_prev_prev, c_prev, width, reduction, reduction_prev))
            c_prev_prev, c_prev, reduction_prev = c_prev, 4 * width, reduction
        self.cells = nn.ModuleList(cells)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x, alphas):
        normal, reduce = (F.softmax(a, dim=-1) for a in alphas)
        s0 = s1 = self.stem(x)
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, reduce if i in self.reductions else normal)
        return self.classifier(s1.mean((2, 3)))


class Search:
    """A supernet, its alphas (NB201: one [6, 5]; DARTS: normal and reduce [14, 8]) and both
    optimizers, on ``device``; the methods below are search steps on a train and a val batch
    (on the same device)."""

    def __init__(self, space, c, cells, lr=0.025, seed=0, device="cpu"):
        torch.manual_seed(seed)
        if space == "nb201":
            net, shapes = NB201Supernet(c, cells), [(len(EDGES), len(OPS))]
        else:
            net, shapes = DartsSupernet(c, cells), [(14, len(DARTS_OPS))] * 2
        self.net = net.to(device)
        self.alphas = [(1e-3 * torch.randn(shape)).to(device).requires_grad_() for shape in shapes]
        self.names, self.weights = map(list, zip(*self.net.named_parameters()))
        self.lr = lr
        self.w_opt = torch.optim.SGD(self.weights, lr, momentum=0.9, nesterov=True,
                                     weight_decay=5e-4)
        self.a_opt = torch.optim.Adam(self.alphas, 3e-4, betas=(0.5, 0.999), weight_decay=1e-3)

    def loss(self, batch, alphas=None, weights=None):
        """Cross-entropy on ``batch`` with ``alphas`` (default: the search's) and the supernet's
        parameters, or ``weights`` in their place (a list in ``self.weights`` order)."""
        x, y = batch
        alpha = self.alphas if alphas is None else alphas
        if weights is None:
            return F.cross_entropy(self.net(x, alpha), y)
        params = dict(zip(self.names, weights))
        return F.cross_entropy(functional_call(self.net, params, (x, alpha)), y)

    def weight_step(self, train):
        """1 forward, 1 backward (weights)."""
        grads = torch.autograd.grad(self.loss(train, [a.detach() for a in self.alphas]),
                                    self.weights)
        for p, g in zip(self.weights, grads):
            p.grad = g
        nn.utils.clip_grad_norm_(self.weights, 5.0)
        self.w_opt.step()

    def alpha_step(self, grads):
        for a, g in zip(self.alphas, grads):
            a.grad = g
        self.a_opt.step()

    def alpha_grad(self, loss):
        return list(torch.autograd.grad(loss, self.alphas))

    def first_order(self, train, val):
        """DARTS first order, alpha first: 2 forwards, 2 backwards."""
        self.alpha_step(self.alpha_grad(self.loss(val)))  # 1 fwd, 1 bwd
        self.weight_step(train)

    def _unrolled_weights(self, train, create_graph):
        """w' = w - lr grad_w L_train(w, alpha): 1 forward, 1 backward."""
        grads = torch.autograd.grad(self.loss(train), self.weights, create_graph=create_graph)
        return [p - self.lr * g for p, g in zip(self.weights, grads)]

    def darts2_exact(self, train, val):
        """DARTS second order by double backward: w' (1 fwd, 1 bwd with graph), L_val(w')
        (1 fwd) and its alpha gradient through w' (1 bwd through the val pass and the
        train backward: a double backward); then the weight step (1 fwd, 1 bwd)."""
        unrolled = self._unrolled_weights(train, create_graph=True)
        self.alpha_step(self.alpha_grad(self.loss(val, weights=unrolled)))
        self.weight_step(train)

    def darts2_finite_difference(self, train, val, eps=0.01):
        """DARTS's code: w' (1 fwd, 1 bwd), grad of L_val(w') w.r.t. w' and alpha (1 fwd,
        1 bwd), alpha gradients of L_train at w +- r v (2 fwd, 2 bwd); the weight step (1 fwd,
        1 bwd)."""
        unrolled = [w.detach().requires_grad_() for w in
                    self._unrolled_weights(train, create_graph=False)]
        grads = torch.autograd.grad(self.loss(val, weights=unrolled), unrolled + self.alphas)
        v, d_alpha = grads[:len(unrolled)], grads[len(unrolled):]
        r = eps / torch.sqrt(sum(torch.sum(g * g) for g in v))
        sides = []
        for sign in (1.0, -1.0):
            with torch.no_grad():
                for p, g in zip(self.weights, v):
                    p.add_(sign * r * g)
            sides.append(self.alpha_grad(self.loss(train)))
            with torch.no_grad():
                for p, g in zip(self.weights, v):
                    p.sub_(sign * r * g)
        self.alpha_step([d - self.lr * (plus - minus) / (2 * r)
                         for d, plus, minus in zip(d_alpha, *sides)])
        self.weight_step(train)

    def neumann(self, train, val, terms=2):
        """iDARTS with T = 1: the weight step (1 fwd, 1 bwd); grads of L_val w.r.t. w and alpha
        (1 fwd, 1 bwd); grad_w L_train with its graph (1 fwd, 1 bwd), ``terms`` HVPs and the
        mixed product (each a double backward through it): v = lr sum_k (I - lr H)^k g_val,
        grad = grad_alpha L_val - d/d alpha <grad_w L_train, v>."""
        self.weight_step(train)
        grads = torch.autograd.grad(self.loss(val), self.weights + self.alphas)
        g_val, d_alpha = grads[:len(self.weights)], grads[len(self.weights):]
        g_train = torch.autograd.grad(self.loss(train), self.weights, create_graph=True)
        p, total = list(g_val), list(g_val)
        for _ in range(terms):
            hvp = torch.autograd.grad(g_train, self.weights, grad_outputs=p, retain_graph=True)
            p = [a - self.lr * h for a, h in zip(p, hvp)]
            total = [t + a for t, a in zip(total, p)]
        v = [self.lr * t for t in total]
        mixed = torch.autograd.grad(g_train, self.alphas, grad_outputs=v)
        self.alpha_step([d - m for d, m in zip(d_alpha, mixed)])

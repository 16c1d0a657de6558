"""An independent PyTorch implementation of the NAS-Bench-201 supernet and of the search steps
jaxnas runs, for ``experiments/bench_vs_torch.py`` only (never imported by ``jaxnas`` or the
tests; needs ``pip install -e ".[bench]"``).

The supernet has jaxnas's shapes and work: stem conv 3x3 + BN, three stages of N cells (C, 2C,
4C channels) joined by residual reduction blocks, BN + ReLU, global average pool, linear. Each
of a cell's six edges sums ``w_k op_k(x)`` over skip, ReLU-conv1x1-BN, ReLU-conv3x3-BN and 3x3
average pooling (``none`` adds zero and is not computed, as in jaxnas). Weights are SGD with
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

    def forward(self, x, alpha):
        weights = F.softmax(alpha, dim=-1)
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x, weights) if isinstance(layer, Cell) else layer(x)
        x = F.relu(self.last(x)).mean((2, 3))
        return self.classifier(x)


class Search:
    """A supernet, its alpha [6, 5] and both optimizers; ``step(method, train, val)``."""

    def __init__(self, c, n, lr=0.025, seed=0):
        torch.manual_seed(seed)
        self.net = NB201Supernet(c, n)
        self.alpha = (1e-3 * torch.randn(len(EDGES), len(OPS))).requires_grad_()
        self.names, self.weights = map(list, zip(*self.net.named_parameters()))
        self.lr = lr
        self.w_opt = torch.optim.SGD(self.weights, lr, momentum=0.9, nesterov=True,
                                     weight_decay=5e-4)
        self.a_opt = torch.optim.Adam([self.alpha], 3e-4, betas=(0.5, 0.999), weight_decay=1e-3)

    def loss(self, batch, alpha=None, weights=None):
        """Cross-entropy on ``batch`` with ``alpha`` (default: the search's) and the supernet's
        parameters, or ``weights`` in their place (a list in ``self.weights`` order)."""
        x, y = batch
        alpha = self.alpha if alpha is None else alpha
        if weights is None:
            return F.cross_entropy(self.net(x, alpha), y)
        params = dict(zip(self.names, weights))
        return F.cross_entropy(functional_call(self.net, params, (x, alpha)), y)

    def weight_step(self, train):
        """1 forward, 1 backward (weights)."""
        grads = torch.autograd.grad(self.loss(train, self.alpha.detach()), self.weights)
        for p, g in zip(self.weights, grads):
            p.grad = g
        nn.utils.clip_grad_norm_(self.weights, 5.0)
        self.w_opt.step()

    def alpha_step(self, grad):
        self.alpha.grad = grad
        self.a_opt.step()

    def first_order(self, train, val):
        """DARTS first order, alpha first: 2 forwards, 2 backwards."""
        self.alpha_step(torch.autograd.grad(self.loss(val), self.alpha)[0])  # 1 fwd, 1 bwd
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
        loss = self.loss(val, weights=unrolled)
        self.alpha_step(torch.autograd.grad(loss, self.alpha)[0])
        self.weight_step(train)

    def darts2_finite_difference(self, train, val, eps=0.01):
        """DARTS's code: w' (1 fwd, 1 bwd), grad of L_val(w') w.r.t. w' and alpha (1 fwd,
        1 bwd), alpha gradients of L_train at w +- r v (2 fwd, 2 bwd); the weight step (1 fwd,
        1 bwd)."""
        unrolled = [w.detach().requires_grad_() for w in
                    self._unrolled_weights(train, create_graph=False)]
        loss = self.loss(val, weights=unrolled)
        *v, d_alpha = torch.autograd.grad(loss, unrolled + [self.alpha])
        r = eps / torch.sqrt(sum(torch.sum(g * g) for g in v))
        grads = []
        for sign in (1.0, -1.0):
            with torch.no_grad():
                for p, g in zip(self.weights, v):
                    p.add_(sign * r * g)
            grads.append(torch.autograd.grad(self.loss(train), self.alpha)[0])
            with torch.no_grad():
                for p, g in zip(self.weights, v):
                    p.sub_(sign * r * g)
        self.alpha_step(d_alpha - self.lr * (grads[0] - grads[1]) / (2 * r))
        self.weight_step(train)

    def neumann(self, train, val, terms=2):
        """iDARTS with T = 1: the weight step (1 fwd, 1 bwd); grads of L_val w.r.t. w and alpha
        (1 fwd, 1 bwd); grad_w L_train with its graph (1 fwd, 1 bwd), ``terms`` HVPs and the
        mixed product (each a double backward through it): v = lr sum_k (I - lr H)^k g_val,
        grad = grad_alpha L_val - d/d alpha <grad_w L_train, v>."""
        self.weight_step(train)
        *g_val, d_alpha = torch.autograd.grad(self.loss(val), self.weights + [self.alpha])
        g_train = torch.autograd.grad(self.loss(train), self.weights, create_graph=True)
        p, total = list(g_val), list(g_val)
        for _ in range(terms):
            hvp = torch.autograd.grad(g_train, self.weights, grad_outputs=p, retain_graph=True)
            p = [a - self.lr * h for a, h in zip(p, hvp)]
            total = [t + a for t, a in zip(total, p)]
        v = [self.lr * t for t in total]
        mixed = torch.autograd.grad(g_train, self.alpha, grad_outputs=v)[0]
        self.alpha_step(d_alpha - mixed)

"""Matrices with a known spectrum, for the numerical tests."""

import numpy as np


def spd_matrix(eigenvalues, seed):
    """``(A, Q)``: a random symmetric ``A = Q diag(eigenvalues) Q^T`` (SPD for positive
    eigenvalues) and its orthonormal eigenvectors ``Q`` (columns)."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(len(eigenvalues),) * 2))
    return q @ np.diag(eigenvalues) @ q.T, q

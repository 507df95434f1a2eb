"""Independent reference for the exact engine: explicit pair enumeration and a causal
renewal recursion in NumPy, no FFTs, no cumulative-sum tricks. Slow (O(N^2)); small N only.

States are carried as unnormalised Walsh vectors; operations use NumPy copies of the
textbook formulas written here, not qnjax's.
"""

import numpy as np

H = np.array([[1, 1, 1, 1], [1, -1, -1, 1], [1, -1, 1, -1], [1, 1, -1, -1]], float)


def leaf(p, lam0, n):
    t = np.arange(n)
    pmf = np.where(t >= 1, p * (1 - p) ** np.maximum(t - 1, 0), 0.0)
    return pmf[:, None] * (np.asarray(lam0, float) @ H)[None, :]  # (n, 4) unnormalised walsh


def _swap(x, y, p_swap):
    return p_swap * x * y  # Klein convolution is a product in Walsh coordinates


def _dejmps(x, y):
    a, b = x @ H / 4, y @ H / 4  # back to λ (unnormalised)
    A1, C1, B1, D1 = a
    A2, C2, B2, D2 = b
    num = np.array([A1 * A2 + B1 * B2, C1 * C2 + D1 * D2, C1 * D2 + D1 * C2, A1 * B2 + B1 * A2])
    return num @ H


def _bbpssw_werner(x, y):
    # twirl both to Werner: walsh (m, m w, m w, m w) with w = mean of the three coordinates
    m1, w1 = x[0], x[1:].mean()
    m2, w2 = y[0], y[1:].mean()
    f1, f2 = (m1 + 3 * w1) / 4, (m2 + 3 * w2) / 4  # unnormalised fidelities
    p = f1 * f2 + f1 * (m2 - f2) / 3 + (m1 - f1) * f2 / 3 + 5 * (m1 - f1) * (m2 - f2) / 9
    num = f1 * f2 + (m1 - f1) * (m2 - f2) / 9
    w = (4 * num - p) / 3
    return np.array([p, w, w, w])


def attempt(la, lb, cutoff, rates, op, p_swap=1.0):
    """Explicit attempt arrays of one node: success (n, 4) walsh and failure pmf (n,)."""
    n = la.shape[0]
    s = np.zeros((n, 4))
    f = np.zeros(n)
    for ta in range(1, n):
        for tb in range(1, n):
            ma, mb = la[ta, 0], lb[tb, 0]
            if ma == 0 or mb == 0:
                continue
            d = abs(ta - tb)
            if d > cutoff:
                t = min(ta, tb) + cutoff
                if t < n:
                    f[int(t)] += ma * mb
                continue
            t = max(ta, tb)
            x, y = la[ta].copy(), lb[tb].copy()
            if ta < tb:
                x = x * np.exp(-d * np.asarray(rates))
            elif tb < ta:
                y = y * np.exp(-d * np.asarray(rates))
            if op == "swap":
                out = _swap(x, y, p_swap)
            elif op == "dejmps":
                out = _dejmps(x, y)
            else:
                out = _bbpssw_werner(x, y)
            s[t] += out
            f[t] += ma * mb - out[0]
    return s, f


def renewal(s, f):
    n = s.shape[0]
    out = np.zeros_like(s)
    for t in range(n):
        out[t] = s[t] + sum(f[k] * out[t - k] for k in range(1, t + 1))
    return out


def node(la, lb, cutoff, rates, op, p_swap=1.0):
    """Node output; a fractional cut-off mixes the two integer attempts per attempt."""
    k0 = np.floor(cutoff) if np.isfinite(cutoff) else cutoff
    fr = cutoff - k0 if np.isfinite(cutoff) else 0.0
    s, f = attempt(la, lb, k0, rates, op, p_swap)
    if fr > 0:
        s1, f1 = attempt(la, lb, k0 + 1, rates, op, p_swap)
        s, f = (1 - fr) * s + fr * s1, (1 - fr) * f + fr * f1
    return renewal(s, f), s, f

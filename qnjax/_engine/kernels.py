"""Node kernels of the exact engine: the elementary-link spectrum, the windowed decay
convolutions (FFT), prefix sums, and :func:`combine`, one swap/distill node with its
renewal over failed attempts (Li, Coopmans & Elkouss, IEEE TQE 2, 4100315 (2021), §IV).

Arrays are ``(B, C, N)``: flat design batch, Walsh components, time.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .. import _formulas as F
from .. import _truncation as TR
from .._conventions import complex_of, walsh_matrix
from .plan import Plan


def leaf(plan: Plan, p_gen, s0):
    """Λ of an elementary link, ``p (1 − p)^(t−1) · s0`` for ``t >= 1``: (B, C, N) in time
    and its (aliased, untruncated) spectrum ``p z / (1 − (1 − p) z)`` of length M/2+1."""
    dt = p_gen.dtype
    t = jnp.arange(plan.n_int, dtype=dt)
    p = p_gen[:, None]
    pos = p < 1
    lq = jnp.log1p(-jnp.where(pos, p, 0.5))  # log(1 − p) without cancellation for tiny p
    geo = jnp.where(pos, jnp.exp(lq * jnp.maximum(t - 1, 0)), (t == 1).astype(dt))
    pmf = jnp.where(t >= 1, p * geo, 0)
    # z = exp(-2 pi i j / M); 1 - q z = (1 - z) + p z, with 1 - z from half-angle sines.
    j = np.arange(plan.fft_len // 2 + 1)
    z = np.exp(-2j * np.pi * j / plan.fft_len)
    one_minus_z = 2 * np.sin(np.pi * j / plan.fft_len) ** 2 + 1j * np.sin(2 * np.pi * j / plan.fft_len)
    cdt = complex_of(dt)
    zc, omz = jnp.asarray(z, cdt), jnp.asarray(one_minus_z, cdt)
    pc = p_gen[:, None].astype(cdt)
    spec = pc * zc / (omz + pc * zc)
    return s0[:, :, None] * pmf[:, None, :], s0[:, :, None].astype(cdt) * spec[:, None, :]


def conv_kernel(plan: Plan, cutoff, rates):
    """rFFT of ``u(d) exp(−r_c d)``; cutoff (B,), rates (B, C') → (B, C', M/2+1)."""
    d = jnp.arange(plan.n_int, dtype=rates.dtype)
    u = jnp.clip(cutoff[:, None] - d + 1, 0, 1)  # keep-probability at age d
    k = u[:, None, :] * jnp.exp(-rates[:, :, None] * d)
    return jnp.fft.rfft(k, n=plan.fft_len, axis=-1)


def window_mass(plan: Plan, a, cutoff):
    """``(a ⊛ u)(t) = A(t) − A(t − k0 − 1) + frac · a(t − k0 − 1)`` with ``A`` the
    cumulative sum, ``k0 = floor(τ)``: the undecayed window without an FFT."""
    n = plan.n_int
    tau = jnp.minimum(cutoff, n)
    k0 = jnp.floor(tau)
    frac = tau - k0
    idx = jnp.arange(n)[None, :] - k0.astype(jnp.int32)[:, None] - 1
    ok = idx >= 0
    idc = jnp.maximum(idx, 0)
    A = cumsum(a)
    a_sh = jnp.where(ok, jnp.take_along_axis(a, idc, -1), 0)
    A_sh = jnp.where(ok, jnp.take_along_axis(A, idc, -1), 0)
    return A - A_sh + frac[:, None] * a_sh


def window(plan: Plan, lam, spec, cutoff, rates):
    """``X_c = Λ_c ⊛ (u e^(−r_c d))`` for all components: cumulative sums for the mass,
    FFT convolutions for the decaying Walsh coordinates."""
    x0 = window_mass(plan, lam[:, 0], cutoff)
    xr = irfft(plan, spec[:, 1:] * conv_kernel(plan, cutoff, rates[:, 1:]))
    return jnp.concatenate([x0[:, None], xr], axis=1)


def irfft(plan, x):
    return jnp.fft.irfft(x, n=plan.fft_len, axis=-1)[..., : plan.n_int]


CUMSUM_BLOCK = 32


def cumsum(x, block: int = CUMSUM_BLOCK):
    """Cumulative sum over the last (time) axis, blocked: sums within blocks of ``block``
    steps are one product with an upper-triangular matrix of ones, block totals are summed
    the same way recursively (``ceil(log_block N)`` levels, error ``O(block · log_block N ·
    eps)``, e.g. ``96 eps`` at ``N = 10^4``, where a running sum has ``O(N eps)``). Two
    matrix products per level compile and run faster on a CPU than a parallel prefix's
    ``2 log2 N`` slice-and-pad stages."""
    n = x.shape[-1]
    hi = jax.lax.Precision.HIGHEST  # no reduced-precision products on accelerators
    if n <= block:
        return jnp.matmul(x, jnp.triu(jnp.ones((n, n), x.dtype)), precision=hi)
    m = -(-n // block) * block
    xb = jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, m - n)]).reshape(x.shape[:-1] + (m // block, block))
    within = jnp.matmul(xb, jnp.triu(jnp.ones((block, block), x.dtype)), precision=hi)
    inclusive = cumsum(within[..., -1], block)  # through the end of each block
    before = jnp.pad(inclusive[..., :-1], [(0, 0)] * (x.ndim - 1) + [(1, 0)])  # before each block
    return (within + before[..., None]).reshape(x.shape[:-1] + (m,))[..., :n]


def psum(x):
    """Sum over the last (time) axis by pairwise halving: error O(log N · eps) in float32,
    where a running sum over 10^4 steps would lose about three digits."""
    n = x.shape[-1]
    m = 1 << max(0, (n - 1).bit_length())
    x = jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, m - n)])
    while m > 1:
        m //= 2
        x = x[..., :m] + x[..., m:]
    return x[..., 0]


def shift_left(x):
    """``y(t) = x(t + 1)``; the last entry, which would need ``x(N)``, repeats ``x(N − 1)``."""
    return jnp.concatenate([x[..., 1:], x[..., -1:]], axis=-1)


def tail(a):
    """``P(T > t) = 1 − Σ_{s<=t} a(s)``, clamped at 0 against rounding."""
    return jnp.maximum(1 - cumsum(a), 0)



def bilinear(plan: Plan, op, x, y, p_swap, bsm):
    """Unnormalised output of the node operation on (B, C, N) Walsh arrays; ``op`` is
    ``"swap"`` / ``"distill"``, or a traced code (1 swap, 2 distill) selecting one at run time."""
    if not isinstance(op, str):
        return jax.lax.cond(op == 1, lambda: bilinear(plan, "swap", x, y, p_swap, bsm),
                            lambda: bilinear(plan, "distill", x, y, p_swap, bsm))
    if op == "swap":
        return (p_swap[:, None, None] * bsm[:, :, None]) * x * y
    if plan.werner:  # BBPSSW, Werner form
        m, w = F.bbpssw_werner_unnormalized(x[:, 0], x[:, 1], y[:, 0], y[:, 1])
        return jnp.stack([m, w], axis=1)
    h = walsh_matrix(x.dtype)
    lx = jnp.einsum("bct,ck->btk", x, h) / 4  # λ coordinates, time-major
    ly = jnp.einsum("bct,ck->btk", y, h) / 4
    num = F.dejmps_numerators(lx, ly, jnp)
    return jnp.einsum("btk,kc->bct", num, h)


def combine(plan: Plan, op: str, la, fa, lb, fb, cutoff, rate_a, rate_b, p_swap, bsm, same: bool,
             root: bool = False):
    """One node: children Λ (B, C, N) and their spectra → node output Λ and its spectrum.

    The children's spectra are the untruncated renewal outputs of the level below
    (no forward FFT of a child is needed); they differ from the spectra of the
    truncated arrays only by mass beyond ``t_trunc``, whose wrap-around is of the
    order of the truncation itself.

    ``rate_a`` / ``rate_b`` (B, C): Walsh decay rates per step of the waiting child.
    ``same``: the two children are identically distributed (distill nodes, level
    protocols), which halves the work. ``root``: sum the renewal causally (exact below
    ``t_trunc`` whatever lies beyond; no spectrum is returned).
    """
    if same:
        # Identical children: xa = xb − Λ, so every symmetric term collapses to one.
        x = window(plan, la, fa, cutoff, rate_a)
        a, x0 = la[:, 0], x[:, 0]
        pi = x0 - shift_left(x0) + shift_left(a)  # (a ⊛ P(K = k))(t)
        f_cut = 2 * tail(a) * pi  # the waiting child is discarded at its arrival + K
        m_op = a * (2 * x0 - a)  # mass reaching the operation at t
        # 2 B(Λ, X) − B(Λ, Λ) = B(Λ, 2X − Λ): the map is linear in its second argument.
        ls = bilinear(plan, op, la, 2 * x - la, p_swap, bsm)
    else:
        xb = window(plan, lb, fb, cutoff, rate_b)
        xa = window(plan, la, fa, cutoff, rate_a) - la
        a, b = la[:, 0], lb[:, 0]
        xa0, xb0 = xa[:, 0], xb[:, 0]
        a_pi = xa0 + a - shift_left(xa0)
        b_pi = xb0 - shift_left(xb0) + shift_left(b)
        f_cut = tail(b) * a_pi + tail(a) * b_pi
        m_op = a * xb0 + xa0 * b
        ls = bilinear(plan, op, la, xb, p_swap, bsm) + bilinear(plan, op, xa, lb, p_swap, bsm)
    f = f_cut + m_op - ls[:, 0]
    if root:
        # Λ = Λ_s Σ_m f^{*m}: the renewal density as a power series (linear convolutions).
        h = jnp.concatenate([jnp.ones_like(f[:, :1]), -f[:, 1:]], axis=-1)  # f(0) = 0
        # the coverage needs the first t_trunc coefficients only; the pmf all n_int
        g = TR.series_inverse(h, plan.n_out if plan.figures_only else plan.n_int, TR.fast_len)
        if plan.figures_only:
            return root_coverage(plan, ls[:, 0], g), None, ls, f
        lam = irfft(plan, jnp.fft.rfft(ls, n=plan.fft_len, axis=-1)
                     * jnp.fft.rfft(g, n=plan.fft_len, axis=-1)[:, None])
        return lam, None, ls, f
    # Renewal over failed attempts, summed in Fourier space (one transform for f and Λ_s).
    spec = jnp.fft.rfft(jnp.concatenate([f[:, None], ls], axis=1), n=plan.fft_len, axis=-1)
    # At zero frequency 1 − F = P(success) + P(attempt longer than the truncation), which
    # the transform would get by cancellation (zero or negative for tiny p_swap).
    den = (1 - spec[:, :1]).at[:, 0, 0].set(psum(ls[:, 0]) + jnp.maximum(1 - psum(f_cut + m_op), 0))
    den = jnp.where(den == 0, 1, den)
    fout = spec[:, 1:] / den
    return irfft(plan, fout), fout, ls, f


def root_coverage(plan: Plan, s, g):
    """``(Σ_(t<n) Λ(t), low)`` of the root, ``Λ = s ⊛ g`` (``s`` the successful attempt's
    mass density, ``g`` the renewal density, both causal; ``n = t_trunc``), without forming
    ``Λ``: ``Σ_(t<n) Σ_(u<=t) s(u) g(t − u) = Σ_(u<n) s(u) G(n − 1 − u)`` with ``G`` the
    cumulative sum of ``g``. One product where the pmf takes a convolution of length M
    (five transforms of a Werner root); the sum agrees with the pmf's to rounding.

    ``low`` (B,) bool stands in for the full program's check of a pmf entry below ``−slack``:
    ``s`` and ``g`` are probability densities (``g = Σ_m f^{*m}`` with ``f >= 0``), so an entry
    of either below ``−slack`` below ``n`` is a rounding failure, and a pmf built from them
    could not be trusted."""
    n = plan.n_out
    sl = TR.slack(g.dtype)
    G = cumsum(g[:, :n])
    low = jnp.any(s[:, :n] < -sl, -1) | jnp.any(g[:, :n] < -sl, -1)
    return psum(s[:, :n] * jnp.flip(G, -1)), low


def node_deficit(plan: Plan, lam):
    """``P(T > t_trunc − 1)`` of a node output (1 − its coverage), at least 0."""
    return jnp.maximum(1 - psum(lam[:, 0, : plan.n_out]), 0)

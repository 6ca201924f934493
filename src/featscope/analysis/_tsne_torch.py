"""t-SNE gradient descent in torch, so the same code optimises a map on the CPU or a GPU.

openTSNE's compiled Barnes-Hut and FFT gradients run on the CPU only; a GPU needs its own
optimiser. This module reproduces openTSNE's ``gradient_descent`` step for step (gradient
without scikit-learn's factor 4, momentum, delta-bar-delta gains with ``min_gain`` 0.01, update
norms clipped at 5, the map re-centred after each step, callbacks every ``every`` iterations
with the un-exaggerated KL divergence), so :class:`~featscope.analysis.tsne.TSNE` keeps
its parameters and its stopping rule whichever engine runs. Two repulsive-force methods:

* ``"exact"``: all pairs, in row blocks sized to the device's memory. O(N^2) but plain
  elementwise arithmetic, which a GPU runs at full speed up to a few tens of thousands of
  points;
* ``"fft"``: the FFT-accelerated interpolation of Linderman et al. (2019, FIt-SNE), the method
  openTSNE's ``"fft"`` implements: the kernel sums are interpolated from a regular grid of
  nodes (quadratic Lagrange interpolation, 3 nodes per box of ``box_width`` map units), on which
  they are a convolution computed with one FFT. O(N) per iteration plus an FFT of the grid;
  2-D maps only.

Positions, forces and the per-edge work run in float32 (differences are taken directly, never
as ``|a|^2 + |b|^2 - 2ab``, so nearby points lose nothing to cancellation); sums over all
points (Z, the KL divergence) and the FFT grid run in float64, where float32 lost up to a few
per cent of the force on isolated points of a large map. On a GPU the scatter-adds use atomics,
so maps are reproducible to rounding, not bit for bit (on the CPU they are bit for bit).

torch is imported inside the functions, as everywhere in ``featscope.analysis`` (the layering
rule: ``import featscope.analysis`` never pulls in torch).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

import numpy as np

from featscope.analysis._tsne_shared import MAX_STEP_NORM, MIN_GAIN, NODES, Callback, grid_boxes

#: Elements of the (rows x N) pair block of the exact method: 2**22 (16 MB a float32 buffer)
#: keeps the CPU's working set in cache-sized pieces; 2**27 (512 MB) fills a GPU.
_EXACT_BLOCK_CPU = 1 << 22
_EXACT_BLOCK_GPU = 1 << 27


class TorchTSNE:
    """State of one map being optimised: positions, affinities, momentum and gains.

    Parameters
    ----------
    P : scipy.sparse matrix or sparse torch.Tensor of shape (n_samples, n_samples)
        Symmetric affinities summing to 1.
    start : ndarray of shape (n_samples, n_components)
        Start positions.
    device : str or torch.device
        Where the optimisation runs ("cpu", "cuda", "cuda:1", ...).
    method : {"exact", "fft"}
        Repulsive-force method; "fft" needs 2-D maps.
    box_width : float, default 2.0
        FFT method: width of an interpolation box in map units (openTSNE's
        ``ints_in_interval``).
    dtype : torch.dtype, optional
        Precision of the positions and forces. float64 reproduces openTSNE's arithmetic (the
        tests compare step by step); float32 is twice as fast on a GPU and as good a map.
    """

    def __init__(
        self,
        P: Any,
        start: np.ndarray,
        device: str | torch.device,
        method: str,
        box_width: float = 2.0,
        dtype: Any = None,
    ) -> None:
        import torch

        dtype = torch.float32 if dtype is None else dtype
        if method not in ("exact", "fft"):
            raise ValueError(f"method must be 'exact' or 'fft', got {method!r}")
        if method == "fft" and start.shape[1] != 2:
            raise ValueError("the FFT gradient supports 2-D maps only")
        self.device = torch.device(device)
        self.method = method
        self.box_width = float(box_width)
        if isinstance(P, torch.Tensor):  # sparse COO, e.g. from _tsne_affinity.device_affinities
            P = P.coalesce()
            rows, cols = P.indices()
            values = P.values()
        else:  # scipy.sparse
            coo = P.tocoo()
            rows, cols, values = (torch.from_numpy(a) for a in (coo.row, coo.col, coo.data))
        self.rows = rows.to(self.device, torch.int64)
        self.cols = cols.to(self.device, torch.int64)
        values = values.to(self.device, torch.float64)
        self.p = values.to(dtype)
        # sum p log p, the constant part of KL(P || Q); zero entries contribute 0.
        positive = values[values > 0]
        self.p_log_p = float((positive * positive.log()).sum())
        # A copy: the positions are updated in place and the caller's array must not move.
        self.Y = torch.tensor(start, dtype=dtype, device=self.device)
        self.update = torch.zeros_like(self.Y)
        self.gains = torch.ones_like(self.Y)

    # -- forces ----------------------------------------------------------------------------

    def _attraction(
        self, exaggeration: float, eval_error: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attractive forces, and ``sum p_ij log(1 + d_ij^2)`` over the edges of ``P``."""
        import torch

        diff = self.Y[self.rows] - self.Y[self.cols]
        d2 = (diff * diff).sum(dim=1)
        w = torch.reciprocal(1.0 + d2)
        force = torch.zeros_like(self.Y)
        force.index_add_(0, self.rows, diff * (self.p * w * exaggeration)[:, None])
        return force, (self.p * torch.log1p(d2)).sum() if eval_error else None

    def _repulsion_exact(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Unnormalised repulsive forces ``sum_j w_ij^2 (y_i - y_j)`` and ``Z = sum w_ij``."""
        import torch

        Y = self.Y
        n = len(Y)
        budget = _EXACT_BLOCK_GPU if self.device.type == "cuda" else _EXACT_BLOCK_CPU
        block = max(1, min(n, budget // n))
        force = torch.empty_like(Y)
        z = torch.zeros((), dtype=torch.float64, device=self.device)
        columns = Y.T.contiguous()  # (d, n): one coordinate's row at a time stays contiguous
        for start in range(0, n, block):
            stop = min(n, start + block)
            # Per coordinate, (b, n) differences: much faster than one (b, n, d) tensor.
            diffs = [Y[start:stop, c, None] - columns[c][None, :] for c in range(Y.shape[1])]
            w = diffs[0].square()
            for diff in diffs[1:]:
                w.addcmul_(diff, diff)
            w.add_(1.0).reciprocal_()
            # The diagonal (w_ii = 1) is taken out of Z below; its force term is 0 anyway.
            z += w.sum(dtype=torch.float64)
            w.square_()
            for c, diff in enumerate(diffs):
                force[start:stop, c] = (w * diff).sum(dim=1)
        return force, z - n

    def _repulsion_fft(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Interpolate the exact method's sums from a grid convolved by FFT (FIt-SNE)."""
        import torch

        Y = self.Y
        n = len(Y)
        lo = Y.min(dim=0).values
        span = float((Y.max(dim=0).values - lo).max()) * (1 + 1e-5) + 1e-12
        n_boxes = grid_boxes(span, self.box_width)
        width = span / n_boxes
        m = n_boxes * NODES  # nodes per axis
        spacing = width / NODES
        # Box of each point and its position inside the box, in [0, 1).
        local = (Y - lo) / width
        box = local.floor().clamp_(0, n_boxes - 1)
        u = local - box
        weights = _lagrange_weights(u)  # (n, 2, 3): per axis, per node
        node = box.long() * NODES  # first node of the box, per axis
        offsets = torch.arange(NODES, device=self.device)
        ix = (node[:, 0, None] + offsets)[:, :, None]  # (n, 3, 1)
        iy = (node[:, 1, None] + offsets)[:, None, :]  # (n, 1, 3)
        flat = (ix * m + iy).reshape(n, -1)  # (n, 9)
        wxy = (weights[:, 0, :, None] * weights[:, 1, None, :]).reshape(n, -1)  # (n, 9)
        # Charges: 1 for Z and the sum of w^2, the positions for sum w^2 y_j. The grid, its
        # convolution and the interpolation back run in float64: in float32 the force on an
        # isolated point of a 1,000,000-point map, a difference of two large sums, came out
        # with a median error of 3e-3 (6 % at worst) against 6e-5 in float64.
        rel = (Y - lo).double()
        wxy = wxy.double()
        charges = torch.cat([torch.ones_like(rel[:, :1]), rel], dim=1)  # (n, 3)
        grid = rel.new_zeros((m * m, 3))
        grid.index_add_(0, flat.reshape(-1), (wxy[:, :, None] * charges[:, None, :]).reshape(-1, 3))
        grid = grid.T.reshape(3, m, m)
        # Kernels on the node offsets, laid out circularly for a linear convolution of size 2m.
        k = torch.arange(2 * m, device=self.device)
        k = torch.where(k <= m, k, k - 2 * m).double() * spacing
        r2 = k[:, None] ** 2 + k[None, :] ** 2
        k1 = torch.reciprocal(1.0 + r2)
        kernels = torch.fft.rfft2(torch.stack([k1, k1 * k1]))  # (2, 2m, m + 1)
        spectrum = torch.fft.rfft2(grid, s=(2 * m, 2 * m))  # (3, 2m, m + 1)
        products = torch.stack(
            [spectrum[0] * kernels[0], spectrum[0] * kernels[1], *(spectrum[1:] * kernels[1])]
        )
        potential = torch.fft.irfft2(products, s=(2 * m, 2 * m))[:, :m, :m]  # (4, m, m)
        at_points = (potential.reshape(4, -1)[:, flat] * wxy[None]).sum(dim=2)  # (4, n)
        # sum_j w_ij = at_points[0] (self term w_ii = 1 removed below);
        # sum_j w_ij^2 (y_i - y_j) = y_i * sum_j w_ij^2 - sum_j w_ij^2 y_j.
        z = at_points[0].sum(dtype=torch.float64) - n
        force = rel * at_points[1, :, None] - at_points[2:].T
        return force.to(Y.dtype), z

    def gradient(
        self, exaggeration: float, eval_error: bool = True
    ) -> tuple[torch.Tensor, float | None]:
        """Return openTSNE's gradient (no sklearn factor 4) and the KL divergence of the map.

        Parameters
        ----------
        exaggeration : float
            Factor on the attractive forces.
        eval_error : bool, default True
            Also compute the KL divergence (one more pass over the edges and a device sync).

        Returns
        -------
        gradient : Tensor of shape (n_samples, n_components)
        kl_divergence : float or None
            ``KL(P || Q)`` of the current map with the un-exaggerated ``P``; None when not
            ``eval_error``.
        """
        import torch

        attraction, p_log_1p_d2 = self._attraction(exaggeration, eval_error)
        repel = self._repulsion_exact if self.method == "exact" else self._repulsion_fft
        repulsion, z = repel()
        z = torch.clamp(z, min=1e-12)
        gradient = attraction - repulsion / z.to(repulsion.dtype)
        if p_log_1p_d2 is None:
            return gradient, None
        # KL = sum p log p - sum p log q, q = w / Z: = p log p + sum p log(1 + d^2) + log Z.
        return gradient, float(self.p_log_p + p_log_1p_d2.double() + torch.log(z))

    # -- optimisation ----------------------------------------------------------------------

    def optimize(
        self,
        n_iter: int,
        exaggeration: float,
        momentum: float,
        learning_rate: float,
        callbacks: Sequence[Callback] = (),
        every: int = 50,
    ) -> bool:
        """Run up to ``n_iter`` iterations of gradient descent with momentum and gains.

        Parameters
        ----------
        n_iter : int
            Iterations to run.
        exaggeration : float
            Early exaggeration factor on the attractive forces (1 for none).
        momentum : float
            Momentum of the update.
        learning_rate : float
            Step size in openTSNE's units (4 x scikit-learn's).
        callbacks : sequence of callables, default ()
            Called every ``every`` iterations as ``callback(iteration, kl, embedding)``, before
            that iteration's update, like openTSNE's; any returning True stops the phase.
        every : int, default 50
            Iterations between callback calls.

        Returns
        -------
        bool
            True when a callback stopped the phase.
        """
        import torch

        with torch.no_grad():
            for iteration in range(1, n_iter + 1):
                check = bool(callbacks) and iteration % every == 0
                gradient, kl = self.gradient(exaggeration, eval_error=check)
                if check and any([bool(c(iteration, kl, None)) for c in callbacks]):
                    return True
                flipped = torch.sign(self.update) != torch.sign(gradient)
                self.gains = torch.where(flipped, self.gains + 0.2, self.gains * 0.8 + MIN_GAIN)
                self.update.mul_(momentum).sub_(learning_rate * self.gains * gradient)
                norms = self.update.norm(dim=1, keepdim=True)
                self.update.mul_(torch.clamp(MAX_STEP_NORM / norms.clamp_min(1e-12), max=1.0))
                self.Y += self.update
                self.Y -= self.Y.mean(dim=0)
            return False

    def kl_divergence(self) -> float:
        """Return the KL divergence of the current map (un-exaggerated)."""
        import torch

        with torch.no_grad():
            return float(self.gradient(1.0)[1])  # type: ignore[arg-type]

    def embedding(self) -> np.ndarray:
        """Return the current map as a float64 numpy array on the CPU."""
        return self.Y.double().cpu().numpy()


def _lagrange_weights(u: torch.Tensor) -> torch.Tensor:
    """Quadratic Lagrange weights of nodes at (k + 0.5) / 3, k = 0, 1, 2, for ``u`` in [0, 1).

    Returns ``(n, d, 3)``: for each point and axis, the weight of each of the box's nodes; the
    three weights sum to 1 and reproduce any quadratic exactly.
    """
    import torch

    t = (torch.arange(NODES, device=u.device, dtype=u.dtype) + 0.5) / NODES
    out = []
    for k in range(NODES):
        w = torch.ones_like(u)
        for j in range(NODES):
            if j != k:
                w = w * (u - t[j]) / (t[k] - t[j])
        out.append(w)
    return torch.stack(out, dim=-1)

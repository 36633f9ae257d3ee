"""Distances and similarities between embeddings, in pairwise (B×B') and paired (B) forms.

Every distance states its semantics explicitly (squared or not, L2-normalised or not) because
published losses silently differ on both. All of them:

* compute in float32 when given float16/bfloat16 (float64 stays float64), so masks and sums
  never overflow and autocast users get fp32 losses;
* are safe at zero distance: ``sqrt`` is only taken of values above ``eps`` and the rest is
  exactly 0 with a zero (not NaN) gradient;
* carry ``inverted`` — True for similarities (larger means closer) — so that losses can treat
  distances and similarities uniformly through :func:`dissimilarity`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from siamkit.errors import ConfigError

_EPS = 1e-12


def compute_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """The dtype distances are computed in: float64 if any input is float64, else float32."""
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


def _check_2d(x: torch.Tensor, name: str) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 2:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ConfigError(f"{name} must be a 2-D tensor (batch × dim), got {shape}.",
                          hint="Flatten the embeddings to shape (B, D) first.")
    if not x.is_floating_point():
        raise ConfigError(f"{name} must be a floating-point tensor, got {x.dtype}.")


def safe_sqrt(squared: torch.Tensor, eps: float = _EPS) -> torch.Tensor:
    """``sqrt`` that returns exactly 0 with a zero gradient where ``squared <= eps`` (no NaN)."""
    # clamp_min passes no gradient below eps, so the masked entries never see 1/(2·sqrt(0))
    return torch.where(squared > eps, squared.clamp_min(eps).sqrt(), 0.0)


def _l2_normalize(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x, p=2.0, dim=-1, eps=_EPS)


class Distance(nn.Module):
    """Base class: ``pairwise(x, y)`` gives the B×B' matrix, ``paired(x, y)`` the B row-wise values.

    ``normalize=True`` L2-normalises the embeddings first. ``inverted`` is True for
    similarities (larger = closer).
    """

    inverted = False

    def __init__(self, normalize: bool = False):
        super().__init__()
        self.normalize = bool(normalize)

    def _prepare(self, x: torch.Tensor, name: str, dtype: torch.dtype) -> torch.Tensor:
        _check_2d(x, name)
        x = x.to(dtype)
        return _l2_normalize(x) if self.normalize else x

    def pairwise(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """B×B' matrix between rows of ``x`` and rows of ``y`` (``y = x`` when omitted)."""
        dtype = compute_dtype(x) if y is None else compute_dtype(x, y)
        xp = self._prepare(x, "x", dtype)
        yp = xp if y is None else self._prepare(y, "y", dtype)
        if xp.shape[1] != yp.shape[1]:
            raise ConfigError(f"x and y have different embedding sizes ({xp.shape[1]} vs {yp.shape[1]}).")
        return self._pairwise(xp, yp, same=y is None)

    def paired(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Row-wise values d(x_i, y_i), shape (B,)."""
        dtype = compute_dtype(x, y)
        xp, yp = self._prepare(x, "x", dtype), self._prepare(y, "y", dtype)
        if xp.shape != yp.shape:
            raise ConfigError(f"paired() needs x and y of the same shape, got {tuple(xp.shape)} and {tuple(yp.shape)}.")
        return self._paired(xp, yp)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.pairwise(x, y)

    def _pairwise(self, x: torch.Tensor, y: torch.Tensor, same: bool) -> torch.Tensor:
        raise NotImplementedError

    def _paired(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class _SelfSquaredDistances(torch.autograd.Function):
    """D²_ij = ‖x_i − x_j‖² for one batch, with a hand-written backward.

    Forward is one ``addmm``; backward uses the symmetry of D²: with G = (g + gᵀ) masked where
    the value was clamped (and on the diagonal, which is exactly 0),
    ∂L/∂x = 2·(rowsum(G)·x − G·x) — one matmul instead of autograd's two plus the element-wise
    chain. Not twice differentiable.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        sq = (x * x).sum(1)
        d2 = torch.addmm(sq[:, None] + sq[None, :], x, x.T, alpha=-2.0)
        dead = d2 <= 0.0
        dead.fill_diagonal_(True)
        d2.masked_fill_(dead, 0.0)
        ctx.save_for_backward(x, dead)
        return d2

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        x, dead = ctx.saved_tensors
        g = (grad + grad.T).masked_fill_(dead | dead.T, 0.0)
        return 2.0 * (g.sum(1, keepdim=True) * x - g @ x)


def _squared_euclidean_matrix(x: torch.Tensor, y: torch.Tensor, same: bool) -> torch.Tensor:
    """‖x_i − y_j‖² through one matmul, clamped at 0; exact zeros on the diagonal when y is x."""
    if same:
        return _SelfSquaredDistances.apply(x)
    xx = (x * x).sum(1, keepdim=True)
    yy = (y * y).sum(1, keepdim=True).T
    return torch.addmm(xx + yy, x, y.T, alpha=-2.0).clamp_min(0.0)


class EuclideanDistance(Distance):
    """L2 distance ‖x − y‖ (``squared=False``) or ‖x − y‖² (``squared=True``)."""

    def __init__(self, squared: bool = False, normalize: bool = False, eps: float = _EPS):
        super().__init__(normalize)
        self.squared = bool(squared)
        self.eps = float(eps)

    def _pairwise(self, x, y, same):
        d2 = _squared_euclidean_matrix(x, y, same)
        # the matmul leaves rounding residue (~1e-16) between equal rows: below eps it is 0, as in the sqrt
        return torch.where(d2 > self.eps, d2, 0.0) if self.squared else safe_sqrt(d2, self.eps)

    def _paired(self, x, y):
        diff = x - y
        d2 = (diff * diff).sum(1)
        return d2 if self.squared else safe_sqrt(d2, self.eps)

    def extra_repr(self) -> str:
        return f"squared={self.squared}, normalize={self.normalize}"


class SquaredEuclideanDistance(EuclideanDistance):
    """‖x − y‖² (FaceNet's training distance; 2 − 2cos on unit-norm embeddings)."""

    def __init__(self, normalize: bool = False):
        super().__init__(squared=True, normalize=normalize)


class CosineSimilarity(Distance):
    """cos(x, y) ∈ [−1, 1]; a similarity (``inverted = True``). Always normalises."""

    inverted = True

    def __init__(self):
        super().__init__(normalize=True)

    def _pairwise(self, x, y, same):
        return x @ y.T

    def _paired(self, x, y):
        return (x * y).sum(1)


class CosineDistance(CosineSimilarity):
    """1 − cos(x, y) ∈ [0, 2] (fast-reid's evaluation metric); a distance."""

    inverted = False

    def _pairwise(self, x, y, same):
        d = 1.0 - super()._pairwise(x, y, same)
        return d.clamp_min(0.0)

    def _paired(self, x, y):
        return (1.0 - super()._paired(x, y)).clamp_min(0.0)


class MahalanobisDistance(Distance):
    """Learned Mahalanobis distance √((x−y)ᵀ M (x−y)) with M = AᵀA (PSD by construction).

    Implemented as ‖A x − A y‖: a bias-free linear map followed by Euclidean distance. ``A`` has
    shape (rank, dim) and starts as the identity (rank = dim) so training starts from L2.
    """

    def __init__(self, dim: int, rank: int | None = None, squared: bool = False, normalize: bool = False):
        super().__init__(normalize)
        if dim <= 0 or (rank is not None and rank <= 0):
            raise ConfigError(f"MahalanobisDistance needs dim > 0 and rank > 0, got dim={dim}, rank={rank}.")
        rank = dim if rank is None else rank
        self.A = nn.Parameter(torch.eye(rank, dim))
        self.inner = EuclideanDistance(squared=squared)

    @property
    def squared(self) -> bool:
        return self.inner.squared

    def metric(self) -> torch.Tensor:
        """The PSD matrix M = AᵀA (dim × dim)."""
        return self.A.T @ self.A

    def _project(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.A.shape[1]:
            raise ConfigError(f"MahalanobisDistance expects dim {self.A.shape[1]}, got embeddings of dim {x.shape[1]}.")
        return x @ self.A.to(x.dtype).T

    def _pairwise(self, x, y, same):
        px = self._project(x)
        return self.inner._pairwise(px, px if same else self._project(y), same)

    def _paired(self, x, y):
        return self.inner._paired(self._project(x), self._project(y))


_NAMED = {
    "euclidean": lambda **kw: EuclideanDistance(**kw),
    "l2": lambda **kw: EuclideanDistance(**kw),
    "sqeuclidean": lambda **kw: SquaredEuclideanDistance(**kw),
    "squared_euclidean": lambda **kw: SquaredEuclideanDistance(**kw),
    "cosine": lambda **kw: CosineDistance(**kw),
    "cosine_similarity": lambda **kw: CosineSimilarity(**kw),
    "mahalanobis": lambda **kw: MahalanobisDistance(**kw),
}


def get_distance(spec: Distance | str | None, **kwargs) -> Distance:
    """A :class:`Distance` from an instance, a name (``euclidean``, ``sqeuclidean``, ``cosine``,
    ``cosine_similarity``, ``mahalanobis``) or ``None`` (plain Euclidean)."""
    if spec is None:
        return EuclideanDistance(**kwargs)
    if isinstance(spec, Distance):
        if kwargs:
            raise ConfigError("Distance options given together with a Distance instance.",
                              hint="Configure the instance itself, or pass the distance by name.")
        return spec
    if isinstance(spec, str) and spec in _NAMED:
        try:
            return _NAMED[spec](**kwargs)
        except TypeError as exc:
            raise ConfigError(f"Bad options for distance {spec!r}: {exc}.") from None
    raise ConfigError(f"Unknown distance {spec!r}.", hint=f"Use one of: {', '.join(sorted(_NAMED))}.")


def dissimilarity(distance: Distance, values: torch.Tensor) -> torch.Tensor:
    """Map distance/similarity values to "larger = farther" (negates similarities)."""
    return -values if distance.inverted else values

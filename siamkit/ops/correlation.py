"""Cross-correlations between template features ``z`` and search features ``x``.

Every Siamese tracker fuses φ(z) and φ(x) with one of these:

* :func:`xcorr` — SiamFC: the whole C×h×w template slides over the search map (one output channel);
* :func:`xcorr_up` — SiamRPN "up-channel": the template has been turned into K kernels of C×h×w;
* :func:`xcorr_depthwise` — SiamRPN++/SiamMask/SiamBAN: channel c of the template slides over channel c of x;
* :func:`asymmetric_fuse` — SiamBAN-ACM: a k×k convolution over the concatenation [template; search window]
  computed as the sum of two separate convolutions, so template and search may differ in size and the
  template half can be cached (no dynamic kernel, which keeps ONNX/TensorRT export simple).

All are batched with ``groups`` so the batch never loops in Python; sample ``i`` of ``x`` is correlated with
sample ``i`` of ``z`` (for :func:`xcorr`, with ``z[i % Bz]`` so several search crops can share templates).
Correlation means no kernel flip (as ``torch.nn.functional.conv2d``), no padding, stride 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from siamkit.errors import ConfigError

__all__ = ["xcorr", "xcorr_up", "xcorr_depthwise", "asymmetric_fuse"]


def _check_4d(name: str, t: torch.Tensor) -> None:
    if not isinstance(t, torch.Tensor) or t.dim() != 4:
        shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
        raise ConfigError(f"{name} must be a 4-D tensor B×C×H×W, got {shape}.", hint="Add a batch dimension.")


def _check_fits(x: torch.Tensor, z: torch.Tensor) -> None:
    if z.shape[-2] > x.shape[-2] or z.shape[-1] > x.shape[-1]:
        raise ConfigError(
            f"Template features {tuple(z.shape[-2:])} are larger than search features {tuple(x.shape[-2:])}.",
            hint="Pass the search map first: xcorr(x, z).",
        )


def xcorr(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """SiamFC cross-correlation: ``out[i, 0] = Σ_c z[i % Bz, c] ⋆ x[i, c]``.

    ``x``: Bx×C×H×W search features, ``z``: Bz×C×h×w templates with Bx a multiple of Bz (e.g. 3 scales per
    template: search crop ``i`` uses template ``i % Bz``, the layout of siamfc-pytorch). Returns
    Bx×1×(H−h+1)×(W−w+1).
    """
    _check_4d("x", x)
    _check_4d("z", z)
    _check_fits(x, z)
    bz, c = z.shape[:2]
    bx = x.shape[0]
    if x.shape[1] != c or bx % bz:
        raise ConfigError(
            f"xcorr needs x and z with the same channels and a search batch that is a multiple of the template "
            f"batch; got x {tuple(x.shape)} and z {tuple(z.shape)}."
        )
    out = F.conv2d(x.reshape(bx // bz, bz * c, x.shape[2], x.shape[3]), z, groups=bz)
    return out.reshape(bx, 1, out.shape[2], out.shape[3])


def xcorr_up(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Up-channel correlation (SiamRPN): ``kernel`` holds K full C×h×w kernels per sample.

    ``x``: B×C×H×W, ``kernel``: B×(K·C)×h×w laid out as K consecutive blocks of C channels (what a conv with
    K·C output channels produces, reshaped to (B·K)×C×h×w as pysot/DaSiamRPN do). Returns B×K×H'×W'.
    """
    _check_4d("x", x)
    _check_4d("kernel", kernel)
    _check_fits(x, kernel)
    b, c = x.shape[:2]
    if kernel.shape[0] != b or kernel.shape[1] % c:
        raise ConfigError(
            f"xcorr_up needs kernel B×(K·C)×h×w matching x B×C×H×W; got x {tuple(x.shape)} and kernel "
            f"{tuple(kernel.shape)}."
        )
    k = kernel.shape[1] // c
    weight = kernel.reshape(b * k, c, kernel.shape[2], kernel.shape[3])
    out = F.conv2d(x.reshape(1, b * c, x.shape[2], x.shape[3]), weight, groups=b)
    return out.reshape(b, k, out.shape[2], out.shape[3])


def xcorr_depthwise(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Depth-wise correlation (SiamRPN++): ``out[i, c] = z[i, c] ⋆ x[i, c]``; B×C×H×W, B×C×h×w → B×C×H'×W'."""
    _check_4d("x", x)
    _check_4d("z", z)
    _check_fits(x, z)
    if x.shape[:2] != z.shape[:2]:
        raise ConfigError(
            f"xcorr_depthwise needs x and z with the same batch and channels; got {tuple(x.shape)} and "
            f"{tuple(z.shape)}.",
            hint="Repeat the template batch to match the search batch.",
        )
    b, c = x.shape[:2]
    out = F.conv2d(
        x.reshape(1, b * c, x.shape[2], x.shape[3]), z.reshape(b * c, 1, z.shape[2], z.shape[3]), groups=b * c
    )
    return out.reshape(b, c, out.shape[2], out.shape[3])


def asymmetric_fuse(
    x: torch.Tensor,
    z: torch.Tensor,
    weight_x: torch.Tensor,
    weight_z: torch.Tensor,
    bias: torch.Tensor | None = None,
    extra: torch.Tensor | None = None,
) -> torch.Tensor:
    """ACM asymmetric convolution: a k×k conv with weight ``[weight_z | weight_x]`` over the channel
    concatenation of the template ``z`` (exactly k×k) and each k×k search window of ``x``.

    Because convolution is linear in its input channels this equals ``conv(x, weight_x) + conv(z, weight_z)``
    with the template term a B×C_out×1×1 map broadcast over the search positions. ``extra`` (B×C_out, or
    B×C_out×1×1) is added too — SiamBAN-ACM adds its box-prior embedding there. Returns B×C_out×H'×W'.
    """
    _check_4d("x", x)
    _check_4d("z", z)
    if z.shape[-2:] != weight_z.shape[-2:] or x.shape[0] != z.shape[0]:
        raise ConfigError(
            f"asymmetric_fuse needs a template exactly the size of its kernel and equal batches; got z "
            f"{tuple(z.shape)}, weight_z {tuple(weight_z.shape)}, x {tuple(x.shape)}."
        )
    out = F.conv2d(x, weight_x) + F.conv2d(z, weight_z, bias)
    if extra is not None:
        out = out + extra.reshape(out.shape[0], out.shape[1], 1, 1)
    return out

"""Embedding networks for verification and retrieval, and the Siamese wrappers around them.

- :class:`EmbeddingNet` = backbone feature map → pooling (avg / GeM / max / flatten) →
  optional linear projection (+ activation) → optional BNNeck → optional L2 normalisation.
- :class:`SiameseNet` shares ONE embedding network over any number of inputs:
  ``net(a, b)`` → ``(f(a), f(b))``; ``net(a, p, n)`` → three embeddings (triplets), etc.
- :class:`PseudoSiameseNet` gives each input its own, unshared branch (e.g. photo vs sketch).
- :class:`L1VerificationHead` is Koch et al.'s learned weighted-L1 same/different logit.

Builders registered in :data:`siamkit.config.MODELS`: ``embed_koch``, ``embed_smallconv``,
``embed_reid_resnet`` and ``embed_lite0`` (the ImageNet EfficientNet-Lite0 trunk, :class:`LiteBackbone`);
each returns an :class:`EmbeddingNet`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from siamkit.config import MODELS
from siamkit.nn.backbones.efficientnet_lite import TAPS, LiteTrunk
from siamkit.nn.backbones.koch import KOCH_KERNELS, KochNet
from siamkit.nn.backbones.reid_resnet import ReIDResNet
from siamkit.nn.backbones.smallconv import SmallConvNet

POOLINGS = ("avg", "gem", "max", "flatten")
ACTIVATIONS = {"none": nn.Identity, "relu": nn.ReLU, "sigmoid": nn.Sigmoid}


class GeM(nn.Module):
    """Generalised-mean pooling: (mean x^p)^(1/p) with a learnable p (p=1 avg, p→∞ max)."""

    def __init__(self, p: float = 3.0, eps: float = 1e-6):
        super().__init__()
        self.p = nn.Parameter(torch.tensor(float(p)))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return x.clamp(min=self.eps).pow(self.p).mean(dim=(-2, -1)).pow(1.0 / self.p)


class EmbeddingNet(nn.Module):
    """Backbone + pooling + projection + BNNeck + L2 normalisation → one vector per image.

    ``forward(x)`` returns the inference embedding (post-BNNeck when ``bnneck``, unit length
    when ``normalize``). ``forward_features(x)`` returns ``(pre, post)``: the feature before
    the BNNeck (what a triplet loss uses in the BoT recipe) and the one after it (for an
    ID/softmax loss), both un-normalised.
    """

    def __init__(
        self,
        backbone: nn.Module,
        in_channels: int,
        input_size: Sequence[int],
        pooling: str = "avg",
        embed_dim: int | None = 128,
        activation: str = "none",
        bnneck: bool = False,
        normalize: bool = True,
        dropout: float = 0.0,
    ):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.backbone = backbone
        self.in_channels = in_channels
        self.input_size = tuple(int(s) for s in input_size)
        self.pooling = pooling
        self.pool = GeM() if pooling == "gem" else None
        with torch.no_grad():  # infer the pooled width from a dummy input
            was_training = backbone.training
            backbone.eval()
            probe = backbone(torch.zeros(1, in_channels, *self.input_size))
            backbone.train(was_training)
        pooled = probe.numel() if pooling == "flatten" else probe.shape[1]
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        if embed_dim:
            self.project = nn.Linear(pooled, embed_dim)
            self.activation = ACTIVATIONS[activation]()
            self.dim = embed_dim
        else:
            self.project = nn.Identity()
            self.activation = nn.Identity()
            self.dim = pooled
        self.neck = None
        if bnneck:
            self.neck = nn.BatchNorm1d(self.dim)
            self.neck.bias.requires_grad_(False)  # BoT: BNNeck without a learnt shift
        self.normalize = normalize

    def _pool(self, fmap: Tensor) -> Tensor:
        if self.pooling == "flatten":
            return fmap.flatten(1)
        if self.pooling == "gem":
            return self.pool(fmap)
        if self.pooling == "max":
            return fmap.amax(dim=(-2, -1))
        return fmap.mean(dim=(-2, -1))

    def forward_features(self, x: Tensor, cached: bool = False) -> tuple[Tensor, Tensor]:
        """``(pre, post)`` BNNeck features; ``cached=True`` takes the backbone's frozen-part output
        (:meth:`LiteBackbone.frozen_part`) instead of images, for training on cached features."""
        fmap = self.backbone.trainable_part(x) if cached else self.backbone(x)
        pre = self.activation(self.project(self.dropout(self._pool(fmap))))
        post = self.neck(pre) if self.neck is not None else pre
        return pre, post

    def forward(self, x: Tensor) -> Tensor:
        _, post = self.forward_features(x)
        return F.normalize(post, dim=1) if self.normalize else post


class LiteBackbone(nn.Module):
    """The ImageNet EfficientNet-Lite0 trunk (:class:`LiteTrunk`, shared with the trackers) for embeddings.

    Takes siamkit's embedding input, N×C×H×W on the 0–1 scale (``data.mean: [0]``, ``std: [1]``), with
    C = 1 (grey, repeated to three channels) or 3 (RGB), and hands the trunk the BGR 0–255 crops it
    normalises itself. Blocks before ``train_from`` are frozen (weights and batch-norm statistics)
    and run without gradients, so training on CPU costs only the trainable tail;
    :meth:`frozen_part` / :meth:`trainable_part` split the forward pass for training on cached
    features. ``last_stride=1`` removes the stride of the last down-sampling stage (block 11, tap
    ``s32`` only): the re-ID "last stride 1" trick, a finer final feature map.
    """

    def __init__(self, in_channels: int = 3, tap: str = "s32", pretrained: bool = True, train_from: int | None = None,
                 last_stride: int = 2, frozen_bn: bool = True):
        super().__init__()
        if in_channels not in (1, 3):
            raise ValueError(f"in_channels must be 1 or 3, got {in_channels}")
        self.trunk = LiteTrunk(tap, pretrained=pretrained, frozen_bn=frozen_bn)
        last = TAPS[tap][0]
        train_from = last + 1 if train_from is None else train_from  # None: the whole trunk stays frozen
        if not 0 <= train_from <= last + 1:
            raise ValueError(f"train_from must be in 0..{last + 1} for tap {tap!r}, got {train_from}")
        if last_stride not in (1, 2):
            raise ValueError(f"last_stride must be 1 or 2, got {last_stride}")
        if last_stride == 1:
            if tap != "s32":
                raise ValueError("last_stride=1 applies to tap 's32' only (the other taps end before block 11)")
            self.trunk.body._blocks[11]._depthwise_conv.stride = (1, 1)
        self.in_channels, self.train_from, self.out_channels = in_channels, train_from, TAPS[tap][2]
        if train_from > 0:  # the stem and blocks before train_from keep their ImageNet weights
            self.trunk.body._conv_stem.requires_grad_(False)
            self.trunk.body._bn0.requires_grad_(False)
            for block in self.trunk.body._blocks[:train_from]:
                block.requires_grad_(False)

    def train(self, mode: bool = True) -> LiteBackbone:
        super().train(mode)
        for i, block in enumerate(self.trunk.body._blocks):  # frozen blocks keep ImageNet statistics
            if i < self.train_from:
                block.eval()
        if self.train_from > 0:
            self.trunk.body._bn0.eval()
        return self

    def _crops(self, x: Tensor) -> Tensor:
        x = x * 255.0
        return x.expand(-1, 3, -1, -1).contiguous() if x.shape[1] == 1 else x.flip(1)  # RGB → BGR

    def frozen_part(self, x: Tensor) -> Tensor:
        """Images → the input of block ``train_from`` (no gradients: these weights never change)."""
        with torch.no_grad():
            return self.trunk.run_blocks(self._crops(x), 0, self.train_from)

    def trainable_part(self, x: Tensor) -> Tensor:
        """The output of :meth:`frozen_part` → the tap's feature map."""
        if self.train_from == 0:  # nothing frozen: the stem runs here, with gradients
            return self.trunk.run_blocks(self._crops(x), 0)
        return self.trunk.run_blocks(x, self.train_from)

    def forward(self, x: Tensor) -> Tensor:
        return self.trainable_part(x if self.train_from == 0 else self.frozen_part(x))


class SiameseNet(nn.Module):
    """One shared embedding network applied to every input: ``net(*inputs)`` → tuple of embeddings.

    Inputs of the same shape go through the network as ONE concatenated batch (one forward
    pass, shared BatchNorm statistics); a single input returns a single tensor.
    """

    def __init__(self, embedding: nn.Module):
        super().__init__()
        self.embedding = embedding

    def forward(self, *inputs: Tensor) -> Tensor | tuple[Tensor, ...]:
        if not inputs:
            raise ValueError("SiameseNet needs at least one input")
        if len(inputs) == 1:
            return self.embedding(inputs[0])
        if all(x.shape[1:] == inputs[0].shape[1:] for x in inputs):
            out = self.embedding(torch.cat(inputs, dim=0))
            return tuple(out.split([x.shape[0] for x in inputs], dim=0))
        return tuple(self.embedding(x) for x in inputs)

    def distance(self, a: Tensor, b: Tensor, squared: bool = False) -> Tensor:
        """Row-wise Euclidean distance between the embeddings of ``a`` and ``b`` (``losses.distances``)."""
        from siamkit.losses.distances import EuclideanDistance

        fa, fb = self(a, b)
        return EuclideanDistance(squared=squared).paired(fa, fb)


class PseudoSiameseNet(nn.Module):
    """Unshared twins: input i goes through branch i (same output width, different weights)."""

    def __init__(self, *branches: nn.Module):
        super().__init__()
        if len(branches) < 2:
            raise ValueError("PseudoSiameseNet needs at least two branches")
        self.branches = nn.ModuleList(branches)

    def forward(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        if len(inputs) != len(self.branches):
            raise ValueError(f"expected {len(self.branches)} inputs (one per branch), got {len(inputs)}")
        return tuple(branch(x) for branch, x in zip(self.branches, inputs, strict=True))


class L1VerificationHead(nn.Module):
    """Koch et al.: p(same) = σ(Σ_j α_j |a_j − b_j| + b); returns the logit (use BCE-with-logits)."""

    def __init__(self, dim: int):
        super().__init__()
        self.fc = nn.Linear(dim, 1)

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return self.fc((a - b).abs()).squeeze(1)


# --------------------------------------------------------------------------- registered builders


@MODELS.register("embed_koch")
def embed_koch(
    in_channels: int = 1,
    input_size: Sequence[int] = (105, 105),
    widths: Sequence[int] = (64, 128, 128, 256),
    kernels: Sequence[int] = KOCH_KERNELS,
    batch_norm: bool = False,
    pooling: str = "flatten",
    embed_dim: int | None = 4096,
    activation: str = "sigmoid",
    bnneck: bool = False,
    normalize: bool = False,
    dropout: float = 0.0,
) -> EmbeddingNet:
    """Koch et al. twin (defaults = the published 105×105 net with its 4096-d sigmoid layer)."""
    backbone = KochNet(in_channels, widths, kernels, batch_norm)
    return EmbeddingNet(backbone, in_channels, input_size, pooling, embed_dim, activation, bnneck, normalize, dropout)


@MODELS.register("embed_smallconv")
def embed_smallconv(
    in_channels: int = 1,
    input_size: Sequence[int] = (112, 92),
    widths: Sequence[int] = (32, 64, 128, 256),
    convs_per_stage: int = 1,
    pooling: str = "avg",
    embed_dim: int | None = 128,
    activation: str = "none",
    bnneck: bool = False,
    normalize: bool = True,
    dropout: float = 0.0,
) -> EmbeddingNet:
    """Small VGG-style embedding net for faces and signatures."""
    backbone = SmallConvNet(in_channels, widths, convs_per_stage)
    return EmbeddingNet(backbone, in_channels, input_size, pooling, embed_dim, activation, bnneck, normalize, dropout)


@MODELS.register("embed_reid_resnet")
def embed_reid_resnet(
    in_channels: int = 3,
    input_size: Sequence[int] = (256, 128),
    depth: int = 18,
    base_width: int = 64,
    last_stride: int = 1,
    pooling: str = "gem",
    embed_dim: int | None = None,
    activation: str = "none",
    bnneck: bool = True,
    normalize: bool = True,
    dropout: float = 0.0,
) -> EmbeddingNet:
    """ResNet-18/34 person re-identification net (BoT-style: last stride 1, BNNeck)."""
    backbone = ReIDResNet(depth, in_channels, base_width, last_stride)
    return EmbeddingNet(backbone, in_channels, input_size, pooling, embed_dim, activation, bnneck, normalize, dropout)


@MODELS.register("embed_lite0")
def embed_lite0(
    in_channels: int = 3,
    input_size: Sequence[int] = (128, 64),
    tap: str = "s32",
    pretrained: bool = True,
    train_from: int | None = None,
    last_stride: int = 2,
    pooling: str = "gem",
    embed_dim: int | None = 256,
    activation: str = "none",
    bnneck: bool = True,
    normalize: bool = True,
    dropout: float = 0.0,
) -> EmbeddingNet:
    """ImageNet EfficientNet-Lite0 embedding net (faces, signatures, re-ID); input 0–1 grey or RGB.

    ``train_from`` = first trainable block (None: the trunk is frozen; pooling and projection learn).
    Zoo sidecars set ``pretrained: false``: the shipped file holds every weight.
    """
    backbone = LiteBackbone(in_channels, tap, pretrained, train_from, last_stride)
    return EmbeddingNet(backbone, in_channels, input_size, pooling, embed_dim, activation, bnneck, normalize, dropout)

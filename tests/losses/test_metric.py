"""Every metric-learning loss vs a float64 brute-force reference (explicit loops over pairs,
triplets, quadruplets), on random batches including duplicates, one identity, no positives,
and fp16 inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_metric_reference import dist, matrix, reduce, softplus, triplets

from siamkit.config import LOSSES
from siamkit.errors import ConfigError
from siamkit.losses.metric import (
    AdaptiveWeightTripletLoss,
    BatchHardTripletLoss,
    CombinedLoss,
    ContrastiveLoss,
    IDLoss,
    ImprovedTripletLoss,
    QuadrupletLoss,
    TripletLoss,
    VerificationLoss,
)
from siamkit.losses.miners import AllTripletsMiner

SETTINGS = settings(max_examples=25, deadline=None)
DISTANCES = [("euclidean", False), ("euclidean", True), ("sqeuclidean", False), ("cosine", False),
             ("cosine_similarity", False)]


def make_distance(kind, normalize):
    return {"name": kind, "normalize": normalize} if kind in ("euclidean", "sqeuclidean") else kind


@st.composite
def batch(draw, min_b=1, max_b=9, max_ids=4, max_d=5):
    b = draw(st.integers(min_b, max_b))
    d = draw(st.integers(1, max_d))
    labels = np.array(draw(st.lists(st.integers(0, max_ids - 1), min_size=b, max_size=b)))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    x = rng.normal(size=(b, d))
    if b > 1 and draw(st.booleans()):
        x[rng.integers(b)] = x[rng.integers(b)]
    return x, labels


def run(loss, x, labels, dtype=torch.float64, **kw):
    t = torch.tensor(x, dtype=dtype, requires_grad=True)
    value = loss(t, torch.as_tensor(labels), **kw)
    value.backward()
    assert torch.isfinite(t.grad).all()
    return float(value.detach()), t


def dis(kind, normalize, x):
    m = matrix(x, kind, normalize)
    return -m if kind == "cosine_similarity" else m


# --------------------------------------------------------------------------- contrastive


def contrastive_ref(x, labels, kind, normalize, margin, pos_margin, form, reduction, separate):
    m = matrix(x, kind, normalize)
    sign = -1.0 if kind == "cosine_similarity" else 1.0
    pos, neg = [], []
    for i in range(len(x)):
        for j in range(len(x)):
            if i == j:
                continue
            same = labels[i] == labels[j]
            h = max(sign * (m[i, j] - pos_margin), 0.0) if same else max(sign * (margin - m[i, j]), 0.0)
            h = h if form == "plain" else (0.5 * h * h if form == "hadsell" else h * h)
            (pos if same else neg).append(h)
    if separate:
        return reduce(pos, reduction) + reduce(neg, reduction)
    return reduce(pos + neg, reduction)


@pytest.mark.parametrize("kind,normalize", DISTANCES)
@SETTINGS
@given(data=batch(), margin=st.floats(0.1, 2.0), pos_margin=st.sampled_from([0.0, 0.2]),
       form=st.sampled_from(ContrastiveLoss.FORMS), reduction=st.sampled_from(["mean", "sum", "mean_nonzero"]),
       separate=st.booleans())
def test_contrastive_matches_brute_force(kind, normalize, data, margin, pos_margin, form, reduction, separate):
    x, labels = data
    loss = ContrastiveLoss(margin, pos_margin, form, make_distance(kind, normalize), reduction, separate)
    got, _ = run(loss, x, labels)
    ref = contrastive_ref(x, labels, kind, normalize, margin, pos_margin, form, reduction, separate)
    assert got == pytest.approx(ref, rel=1e-6, abs=1e-6)


def test_contrastive_explicit_pairs_plain_formula():
    x1 = torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    x2 = torch.tensor([[3.0, 4.0], [0.3, 0.4], [1.0, 1.0]], dtype=torch.float64)
    same = torch.tensor([True, False, False])
    # ℓ = y·d + (1−y)·[m − d]₊ with m = 1: 5 + 0.5 + 1
    assert float(ContrastiveLoss(margin=1.0).pairs(x1, x2, same)) == pytest.approx((5 + 0.5 + 1) / 3)
    # SigNet: y·d² + (1−y)·[1 − d]₊²
    assert float(ContrastiveLoss.preset("signet").pairs(x1, x2, same)) == pytest.approx((25 + 0.25 + 1) / 3)
    assert float(ContrastiveLoss.preset("hadsell2006").pairs(x1, x2, same)) == pytest.approx((25 + 0.25 + 1) / 6)


# --------------------------------------------------------------------------- triplet (all triplets)


def triplet_ref(x, labels, kind, normalize, margin, soft, reduction, extra=None):
    d = dis(kind, normalize, x)
    values = []
    for a, p, n in triplets(labels):
        v = d[a, p] - d[a, n] + margin
        values.append(softplus(v) if soft else max(v, 0.0))
    return reduce(values, reduction)


@pytest.mark.parametrize("kind,normalize", DISTANCES)
@SETTINGS
@given(data=batch(), margin=st.floats(0.05, 1.5), soft=st.booleans(),
       reduction=st.sampled_from(["mean", "sum", "mean_nonzero"]))
def test_triplet_all_triplets_matches_brute_force(kind, normalize, data, margin, soft, reduction):
    x, labels = data
    loss = TripletLoss(margin, make_distance(kind, normalize), soft=soft, reduction=reduction)
    got, t = run(loss, x, labels)
    ref = triplet_ref(x, labels, kind, normalize, margin, soft, reduction)
    assert got == pytest.approx(ref, rel=1e-6, abs=1e-6)
    # the closed form and explicit enumeration agree, in value and in gradient
    loss2 = TripletLoss(margin, make_distance(kind, normalize), soft=soft, reduction=reduction,
                        miner=AllTripletsMiner())
    got2, t2 = run(loss2, x, labels)
    assert got2 == pytest.approx(got, rel=1e-6, abs=1e-9)
    np.testing.assert_allclose(t2.grad.numpy(), t.grad.numpy(), atol=1e-6)


def test_triplet_fp16_inputs_and_large_values():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(12, 6)) * 100
    labels = np.repeat(np.arange(4), 3)
    x16 = torch.tensor(x, dtype=torch.float16)
    for loss in (TripletLoss(0.3), BatchHardTripletLoss(0.3), ContrastiveLoss(50.0)):
        got, _ = run(loss, x16.double().numpy(), labels, dtype=torch.float16)
        ref, _ = run(loss, x16.double().numpy(), labels, dtype=torch.float64)
        assert math.isfinite(got) and got == pytest.approx(ref, rel=1e-4)


# --------------------------------------------------------------------------- batch hard


def batch_hard_ref(x, labels, kind, normalize, margin, soft, reduction):
    d = dis(kind, normalize, x)
    values, dropped = [], 0
    for a in range(len(x)):
        ps = [d[a, p] for p in range(len(x)) if p != a and labels[p] == labels[a]]
        ns = [d[a, n] for n in range(len(x)) if labels[n] != labels[a]]
        if not ps or not ns:
            dropped += 1
            continue
        v = max(ps) - min(ns) + margin
        values.append(softplus(v) if soft else max(v, 0.0))
    return reduce(values, reduction), dropped


@pytest.mark.parametrize("kind,normalize", DISTANCES)
@SETTINGS
@given(data=batch(max_b=12), margin=st.floats(0.0, 1.0), soft=st.booleans(),
       reduction=st.sampled_from(["mean", "sum", "mean_nonzero"]))
def test_batch_hard_matches_brute_force(kind, normalize, data, margin, soft, reduction):
    x, labels = data
    loss = BatchHardTripletLoss(margin, make_distance(kind, normalize), soft=soft, reduction=reduction)
    got, _ = run(loss, x, labels)
    ref, dropped = batch_hard_ref(x, labels, kind, normalize, margin, soft, reduction)
    assert got == pytest.approx(ref, rel=1e-6, abs=1e-6)
    assert loss.last_stats["dropped"] == dropped
    assert loss.last_stats["kept"] == len(x) - dropped


def test_batch_hard_degenerate_batches():
    x = np.random.default_rng(0).normal(size=(5, 3))
    loss = BatchHardTripletLoss(0.3)
    value, t = run(loss, x, [7] * 5)  # one identity: no negatives
    assert value == 0.0 and loss.last_stats["no_negative"] == 5 and (t.grad == 0).all()
    value, _ = run(loss, x, [0, 1, 2, 3, 4])  # all singletons: no positives
    assert value == 0.0 and loss.last_stats["no_positive"] == 5
    value, _ = run(loss, x, [0, 0, 1, 2, 3])  # unequal K is fine: anchors 0 and 1 kept
    assert loss.last_stats["kept"] == 2
    dup = np.repeat(x[:2], 3, axis=0)  # identical embeddings inside identities: d_ap = 0, finite grads
    value, t = run(BatchHardTripletLoss(0.3), dup.astype(np.float32), [0, 0, 0, 1, 1, 1], dtype=torch.float32)
    assert torch.isfinite(t.grad).all()


def test_batch_hard_presets():
    hermans = BatchHardTripletLoss.preset("hermans2017")
    assert hermans.soft and not hermans.distance.normalize and not hermans.distance.squared
    bot = BatchHardTripletLoss.preset("bot")
    assert bot.margin == 0.3 and not bot.soft
    assert TripletLoss.preset("facenet").distance.squared and TripletLoss.preset("facenet").distance.normalize
    with pytest.raises(ConfigError, match="no preset"):
        TripletLoss.preset("nope")


# --------------------------------------------------------------------------- improved triplet


@pytest.mark.parametrize("kind,normalize", [("sqeuclidean", True), ("euclidean", False)])
@SETTINGS
@given(data=batch(), tau1=st.floats(-1.5, 0.0), tau2=st.floats(0.0, 0.5), beta=st.floats(0.0, 1.0),
       reduction=st.sampled_from(["mean", "sum"]))
def test_improved_triplet_matches_brute_force(kind, normalize, data, tau1, tau2, beta, reduction):
    x, labels = data
    loss = ImprovedTripletLoss(tau1, tau2, beta, make_distance(kind, normalize), reduction=reduction)
    got, _ = run(loss, x, labels)
    d = matrix(x, kind, normalize)
    values = [max(d[a, p] - d[a, n], tau1) + beta * max(d[a, p], tau2) for a, p, n in triplets(labels)]
    assert got == pytest.approx(reduce(values, reduction), rel=1e-6, abs=1e-6)


# --------------------------------------------------------------------------- quadruplet


def quadruplet_ref(x, labels, kind, margin, margin2):
    d = matrix(x, kind)
    b = len(x)
    t1, t2 = [], []
    for a in range(b):
        ps = [d[a, p] for p in range(b) if p != a and labels[p] == labels[a]]
        ns = [d[a, n] for n in range(b) if labels[n] != labels[a]]
        if not ps or not ns:
            continue
        t1.append(max(max(ps) - min(ns) + margin, 0.0))
        pairs = [d[i, j] for i in range(b) for j in range(b)
                 if labels[i] != labels[j] and labels[i] != labels[a] and labels[j] != labels[a]]
        if pairs:
            t2.append(max(max(ps) - min(pairs) + margin2, 0.0))
    return reduce(t1, "mean") + reduce(t2, "mean")


@SETTINGS
@given(data=batch(max_b=12, max_ids=5), margin=st.floats(0.0, 2.0), margin2=st.floats(0.0, 1.0),
       kind=st.sampled_from(["sqeuclidean", "euclidean"]))
def test_quadruplet_hard_mining_matches_brute_force(data, margin, margin2, kind):
    x, labels = data
    got, _ = run(QuadrupletLoss(margin, margin2, kind), x, labels)
    assert got == pytest.approx(quadruplet_ref(x, labels, kind, margin, margin2), rel=1e-6, abs=1e-6)


def test_quadruplet_explicit_tuples():
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [0.0, 2.5]], dtype=torch.float64, requires_grad=True)
    q = tuple(torch.tensor([v]) for v in (0, 1, 2, 3))
    value = QuadrupletLoss(1.0, 0.5, "sqeuclidean")(x, None, indices_tuple=q)
    # [1 − 4 + 1]₊ + [1 − 0.25 + 0.5]₊ = 0 + 1.25
    assert float(value.detach()) == pytest.approx(1.25)
    with pytest.raises(ConfigError, match="n1, n2"):
        QuadrupletLoss()(x, None, indices_tuple=q[:3])


# --------------------------------------------------------------------------- adaptive weights


def wrt_ref(x, labels, margin, soft, include_self):
    d = matrix(x, "euclidean")
    values = []
    for a in range(len(x)):
        ps = [p for p in range(len(x)) if labels[p] == labels[a] and (p != a or include_self)]
        ns = [n for n in range(len(x)) if labels[n] != labels[a]]
        if not [p for p in ps if p != a] or not ns:
            continue
        zp = sum(math.exp(d[a, p]) for p in ps)
        zn = sum(math.exp(-d[a, n]) for n in ns)
        dp = sum(math.exp(d[a, p]) / zp * d[a, p] for p in ps)
        dn = sum(math.exp(-d[a, n]) / zn * d[a, n] for n in ns)
        v = dp - dn + margin
        values.append(softplus(v) if soft else max(v, 0.0))
    return reduce(values, "mean")


@SETTINGS
@given(data=batch(max_b=10), margin=st.floats(0.0, 0.5), soft=st.booleans(), include_self=st.booleans())
def test_adaptive_weight_triplet_matches_brute_force(data, margin, soft, include_self):
    x, labels = data
    got, _ = run(AdaptiveWeightTripletLoss(margin, soft, include_self), x, labels)
    assert got == pytest.approx(wrt_ref(x, labels, margin, soft, include_self), rel=1e-6, abs=1e-6)


# --------------------------------------------------------------------------- verification


@SETTINGS
@given(data=batch(min_b=2, max_b=8), fusion=st.sampled_from(VerificationLoss.FUSIONS), balance=st.booleans())
def test_verification_matches_brute_force(data, fusion, balance):
    x, labels = data
    torch.manual_seed(0)
    loss = VerificationLoss(x.shape[1], fusion=fusion, balance=balance).double()
    got, _ = run(loss, x, labels)
    w = loss.head.weight.detach().numpy()[0]
    bias = float(loss.head.bias.detach())
    pos, neg = [], []
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            a, b = x[i], x[j]
            f = {"absdiff": np.abs(a - b), "sqdiff": (a - b) ** 2, "prod": a * b,
                 "absdiff_prod": np.concatenate([np.abs(a - b), a * b])}[fusion]
            z = float(sum(wi * fi for wi, fi in zip(w, f, strict=True)) + bias)
            same = labels[i] == labels[j]
            (pos if same else neg).append(softplus(-z) if same else softplus(z))
    if balance and pos and neg:
        ref = 0.5 * (sum(pos) / len(pos) + sum(neg) / len(neg))
    else:
        ref = reduce(pos + neg, "mean")
    assert got == pytest.approx(ref, rel=1e-6, abs=1e-9)


def test_verification_learns_to_separate_pairs():
    torch.manual_seed(0)
    centres = torch.randn(4, 8) * 3
    labels = torch.arange(4).repeat_interleave(4)
    loss = VerificationLoss.preset("koch2015", embedding_dim=8)
    for _ in range(300):  # plain gradient descent (torch.optim's first step imports torch._dynamo: seconds)
        x = centres[labels] + 0.3 * torch.randn(16, 8)
        loss.zero_grad()
        loss(x, labels).backward()
        with torch.no_grad():
            for param in loss.parameters():
                param -= 0.5 * param.grad
    x = centres[labels] + 0.3 * torch.randn(16, 8)
    same = loss.predict(x[0:4], x[1:5])  # consecutive rows 0-1, 1-2, 2-3 same; 3-4 different
    assert same[:3].min() > 0.8 and same[3] < 0.2


# --------------------------------------------------------------------------- ID loss


@SETTINGS
@given(data=batch(min_b=1, max_b=8, max_ids=5, max_d=5), eps=st.floats(0.0, 0.5),
       form=st.sampled_from(["uniform", "others"]))
def test_id_loss_matches_brute_force(data, eps, form):
    logits, _ = data
    c = logits.shape[1]
    labels = np.arange(len(logits)) % c
    got, _ = run(IDLoss(smoothing=eps, smoothing_form=form), logits, labels)
    values = []
    for row, y in zip(logits, labels, strict=True):
        lse = math.log(sum(math.exp(v) for v in row))
        q = [(1 - eps) * (k == y) + (eps / c if form == "uniform" or c == 1 else eps / (c - 1) * (k != y))
             for k in range(c)]
        values.append(-sum(qk * (row[k] - lse) for k, qk in enumerate(q)))
    assert got == pytest.approx(sum(values) / len(values), rel=1e-9)


def test_id_loss_bnneck_and_label_check():
    loss = IDLoss.preset("bot", num_classes=3, embedding_dim=4)
    assert loss.neck is not None and not loss.neck.bias.requires_grad and loss.classifier.bias is None
    x = torch.randn(6, 4, requires_grad=True)
    loss(x, torch.tensor([0, 1, 2, 0, 1, 2])).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    with pytest.raises(ConfigError, match=r"\[0, 3\)"):
        loss(x, torch.tensor([0, 1, 2, 3, 1, 2]))


# --------------------------------------------------------------------------- combined, registry, bad input


def test_combined_is_weighted_sum_and_registry_builds_everything():
    torch.manual_seed(0)
    x = torch.randn(8, 4)
    labels = torch.arange(4).repeat_interleave(2)
    idl, tri = IDLoss(4, 4, smoothing=0.1), BatchHardTripletLoss(0.3)
    combo = CombinedLoss([(0.5, idl), (2.0, tri)])
    with torch.no_grad():
        assert float(combo(x, labels)) == pytest.approx(0.5 * float(idl(x, labels)) + 2.0 * float(tri(x, labels)))
    assert any(p is idl.classifier.weight for p in combo.parameters())
    bot = CombinedLoss.preset("bot", num_classes=4, embedding_dim=4)
    assert float(bot(x, labels).detach()) > 0
    built = LOSSES.build("combined", terms=[{"name": "id", "weight": 1.0, "num_classes": 4, "embedding_dim": 4},
                                            {"name": "batch_hard_triplet", "preset": "bot"}])
    assert isinstance(built, CombinedLoss)
    assert {"contrastive", "triplet", "batch_hard_triplet", "improved_triplet", "quadruplet",
            "adaptive_weight_triplet", "verification", "id", "combined"} <= set(LOSSES.names())
    assert LOSSES.build("triplet", preset="facenet", margin=0.5).margin == 0.5


def test_bad_inputs_raise_config_errors():
    x = torch.randn(4, 3)
    with pytest.raises(ConfigError, match="labels must have shape"):
        TripletLoss()(x, torch.tensor([0, 1]))
    with pytest.raises(ConfigError, match="needs labels"):
        ContrastiveLoss()(x)
    with pytest.raises(ConfigError, match=r"\(B, D\)"):
        TripletLoss()(torch.randn(4), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ConfigError, match="reduction"):
        TripletLoss(reduction="max")
    with pytest.raises(ConfigError, match="triplets"):
        TripletLoss()(x, None, indices_tuple=(torch.tensor([0]),) * 4)


# --------------------------------------------------------------------------- every loss: fp16 and degenerate batches


def all_losses(dim):
    torch.manual_seed(0)
    return {
        "contrastive": ContrastiveLoss(margin=2.0),
        "hadsell": ContrastiveLoss.preset("hadsell2006"),
        "triplet": TripletLoss(0.3),
        "triplet_soft": TripletLoss(0.0, soft=True),
        "facenet": TripletLoss.preset("facenet"),
        "batch_hard": BatchHardTripletLoss.preset("bot"),
        "hermans": BatchHardTripletLoss.preset("hermans2017"),
        "improved": ImprovedTripletLoss.preset("cheng2016"),
        "quadruplet": QuadrupletLoss.preset("chen2017"),
        "wrt": AdaptiveWeightTripletLoss.preset("agw"),
        "verification": VerificationLoss(dim).double(),
        "id": IDLoss(6, dim, smoothing=0.1).double(),
    }


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", list(all_losses(4)))
def test_every_loss_half_precision_matches_fp64_on_the_same_values(name, dtype):
    rng = np.random.default_rng(1)
    x = torch.tensor(rng.normal(size=(12, 4)) * 3, dtype=dtype).double().numpy()  # values exact in `dtype`
    labels = np.repeat(np.arange(4), 3)
    loss = all_losses(4)[name]
    ref, _ = run(loss, x, labels, dtype=torch.float64)
    got, t = run(loss, x, labels, dtype=dtype)
    assert math.isfinite(got) and t.grad.dtype == dtype
    assert got == pytest.approx(ref, rel=2e-3, abs=2e-4)


@pytest.mark.parametrize("name", list(all_losses(3)))
@pytest.mark.parametrize("case", ["one_identity", "all_singletons", "duplicates", "single_row"])
def test_every_loss_survives_degenerate_batches(name, case):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(6, 3))
    labels = {"one_identity": [0] * 6, "all_singletons": list(range(6)), "duplicates": [0, 0, 1, 1, 2, 2],
              "single_row": [0]}[case]
    if case == "duplicates":
        x = np.repeat(x[:3], 2, axis=0)  # zero distances inside every identity
        x[4] = x[0]  # and a zero distance across identities
    if case == "single_row":
        x = x[:1]
    value, t = run(all_losses(3)[name], x, np.array(labels))  # run() asserts finite gradients
    assert math.isfinite(value)
    no_triplets = case in ("one_identity", "all_singletons", "single_row")
    if no_triplets and name in ("triplet", "triplet_soft", "facenet", "batch_hard", "hermans", "improved",
                                "quadruplet", "wrt"):
        assert value == 0.0 and (t.grad == 0).all()


def test_verification_hard_pairs_equal_batch_hard_tuple():
    from siamkit.losses.miners import BatchHardMiner

    torch.manual_seed(1)
    x = torch.randn(12, 5, dtype=torch.float64)
    labels = torch.arange(3).repeat_interleave(4)
    loss = VerificationLoss(5, pairs="hard", balance=False).double()
    a, p, n = BatchHardMiner()(x, labels)
    with torch.no_grad():
        assert float(loss(x, labels)) == pytest.approx(float(loss(x, labels, indices_tuple=(a, p, a, n))), rel=1e-12)


def test_zero_loss_stays_finite_for_huge_fp16_embeddings():
    x = torch.full((4, 3), 60000.0, dtype=torch.float16, requires_grad=True)  # their sum overflows fp16
    value = TripletLoss(0.2)(x, torch.zeros(4, dtype=torch.long))
    value.backward()
    assert float(value.detach()) == 0.0 and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("b,d,margin", [(6, 40, 1.5), (40, 2, 0.3), (40, 2, 5.0)])
def test_contrastive_active_pair_and_full_matrix_paths_agree_with_explicit_pairs(b, d, margin):
    """(6, 40): the full-matrix path; (40, 2, 0.3): the active-pairs path; (40, 2, 5): every pair active."""
    from siamkit.losses.miners import AllPairsMiner

    rng = np.random.default_rng(b + d)
    x = rng.normal(size=(b, d))
    labels = rng.integers(0, 4, size=b)
    for reduction in ("mean", "sum", "mean_nonzero"):
        loss = ContrastiveLoss(margin, form="hadsell", reduction=reduction, separate_terms=True)
        got, t = run(loss, x, labels)
        ref = contrastive_ref(x, labels, "euclidean", False, margin, 0.0, "hadsell", reduction, True)
        assert got == pytest.approx(ref, rel=1e-9)
        tup = AllPairsMiner()(torch.from_numpy(x), torch.from_numpy(labels))
        _, t2 = run(lambda e, y, lo=loss, tp=tup: lo(e, y, indices_tuple=tp), x, labels)
        np.testing.assert_allclose(t.grad.numpy(), t2.grad.numpy(), atol=1e-10)


@pytest.mark.parametrize("name", ["batch_hard", "hermans", "contrastive", "wrt", "quadruplet", "facenet"])
def test_training_a_linear_embedding_separates_identities(name):
    """Plain gradient descent on a linear map: leave-one-out 1-NN accuracy must rise well above chance.

    Step sizes follow each loss's scale: squared distances on raw features (quadruplet) have large
    gradients, unit-norm FaceNet embeddings small ones."""
    torch.manual_seed(0)
    centres = torch.randn(6, 16)
    labels = torch.arange(6).repeat_interleave(4)

    def sample():  # identity signal in 16 dims, drowned by 16 dims of strong noise
        return torch.cat([centres[labels] * 0.7, 3.0 * torch.randn(24, 16)], dim=1) + 0.4 * torch.randn(24, 32)

    def nn_accuracy(w):
        with torch.no_grad():
            e = sample() @ w
            d = torch.cdist(e, e) + torch.eye(24) * 1e9
            return float((labels[d.argmin(1)] == labels).float().mean())

    loss = all_losses(8)[name]
    w = (0.3 * torch.randn(32, 8)).requires_grad_(True)
    before = nn_accuracy(w)
    for _ in range(150):
        w.grad = None
        loss(sample() @ w, labels).backward()
        with torch.no_grad():
            w -= {"quadruplet": 0.001, "facenet": 0.2}.get(name, 0.05) * w.grad
    after = nn_accuracy(w)
    assert after > max(before + 0.2, 0.7), (before, after)


# --------------------------------------------------------------------------- query vs reference set


@SETTINGS
@given(q=batch(max_b=6), r=batch(max_b=7), margin=st.floats(0.05, 1.5),
       reduction=st.sampled_from(["mean", "sum", "mean_nonzero"]))
def test_reference_set_losses_match_brute_force(q, r, margin, reduction):
    (x, labels), (y, ref_labels) = q, r
    if x.shape[1] != y.shape[1]:
        y = np.resize(y, (len(y), x.shape[1]))
    d = np.array([[dist(u, v) for v in y] for u in x])
    same = labels[:, None] == ref_labels[None, :]
    trips = [(a, p, n) for a in range(len(x)) for p in range(len(y)) for n in range(len(y))
             if same[a, p] and not same[a, n]]  # no self-exclusion across sets
    kw = {"ref_emb": torch.tensor(y), "ref_labels": torch.tensor(ref_labels)}

    got, _ = run(TripletLoss(margin, reduction=reduction), x, labels, **kw)
    ref = reduce([max(d[a, p] - d[a, n] + margin, 0.0) for a, p, n in trips], reduction)
    assert got == pytest.approx(ref, rel=1e-6, abs=1e-9)
    got, _ = run(TripletLoss(margin, reduction=reduction, miner=AllTripletsMiner()), x, labels, **kw)
    assert got == pytest.approx(ref, rel=1e-6, abs=1e-9)

    got, _ = run(BatchHardTripletLoss(margin, reduction=reduction), x, labels, **kw)
    hard = [max(d[a, same[a]].max() - d[a, ~same[a]].min() + margin, 0.0)
            for a in range(len(x)) if same[a].any() and (~same[a]).any()]
    assert got == pytest.approx(reduce(hard, reduction), rel=1e-6, abs=1e-9)

    got, _ = run(ContrastiveLoss(margin, reduction=reduction), x, labels, **kw)
    pairs = [d[a, j] if same[a, j] else max(margin - d[a, j], 0.0) for a in range(len(x)) for j in range(len(y))]
    assert got == pytest.approx(reduce(pairs, reduction), rel=1e-6, abs=1e-9)


def test_reference_set_needs_matching_labels():
    x = torch.randn(4, 3)
    with pytest.raises(ConfigError, match="labels must have shape"):
        TripletLoss()(x, torch.zeros(4, dtype=torch.long), ref_emb=torch.randn(5, 3), ref_labels=torch.zeros(4))
    with pytest.raises(ConfigError, match="ref_emb must have shape"):
        ContrastiveLoss()(x, torch.zeros(4, dtype=torch.long), ref_emb=torch.randn(5, 2),
                          ref_labels=torch.zeros(5, dtype=torch.long))

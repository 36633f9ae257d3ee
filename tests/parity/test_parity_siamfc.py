"""siamkit's SiamFC against huanglianghua/siamfc-pytorch: crops, one multi-scale step, and 30 frames end to end.

* crops: siamfc-pytorch starts a crop of side ``s`` at ``round(c − (s − 1)/2)`` (centred), one pixel
  right/down of pysot's ``floor(c − s/2)``; siamkit's ``siamfc`` tracker follows siamfc-pytorch
  (``crop: siamfc``) and its uint8 crops are bit-exact with ``ops.crop_and_resize`` at every border
  and on rounding ties, while the pysot convention is not;
* one whole step (×16 bicubic upsampling, scale penalty, scale choice, normalisation, Hann window,
  displacement, scale damping) driven by **peaked** responses: a maximum at a known cell of a known
  scale, a rival on another scale, near the border and in the centre;
* end to end: ``peers.compare_siamfc`` (same weights, 30 tracked frames of Crossing) to 0.5 px.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from peers import compare_siamfc, siamfc_env

from siamkit.ops.crop import crop_batch, siamfc_crop_centres
from siamkit.trackers.siamfc import SiamFCConfig, SiamFCCore


@pytest.fixture(scope="module")
def siamfc():
    with siamfc_env() as env:
        yield env


@pytest.mark.parametrize("centre", [(60.3, 40.7), (60.5, 40.5), (0.0, 0.0), (-20.5, 50.2), (119.9, 79.6), (150.0, -30)])
@pytest.mark.parametrize(("side", "out"), [(37.4, 127), (128.0, 127), (301.6, 255)])
def test_uint8_crop_is_siamfc_pytorch_crop_and_resize(siamfc, centre, side, out):
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (80, 120, 3), dtype=np.uint8)
    avg = image.reshape(-1, 3).mean(0) + 0.3
    theirs = siamfc["ops"].crop_and_resize(image, np.array(centre[::-1], np.float64), side, out, border_value=avg)
    frames = torch.from_numpy(image).permute(2, 0, 1)[None]
    c, s = siamfc_crop_centres(torch.tensor([centre], dtype=torch.float64), torch.tensor([side]))
    avg_t = torch.round(torch.from_numpy(avg)[None])
    ours = crop_batch(frames, c, s, out, avg_t, quantize=True)[0].permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(ours, theirs)
    if centre in [(60.3, 40.7), (119.9, 79.6)]:  # not a rounding tie, not all padding: pysot's origin is 1 px off
        pysot_way = crop_batch(frames, torch.tensor([centre], dtype=torch.float64), s, out, avg_t, quantize=True)
        assert not np.array_equal(pysot_way[0].permute(1, 2, 0).numpy(), theirs)


class FixedResponses(torch.nn.Module):
    """A stand-in network: the template is ignored and the search returns the given K responses."""

    def __init__(self, responses: torch.Tensor):
        super().__init__()
        self.responses = responses

    def template(self, z):
        return z.new_zeros(z.shape[0], 1, 1, 1)

    def search(self, x, zf):
        return self.responses.clone()

    backbone = staticmethod(lambda x: x)

    def head(self, kernel, x):
        return self.responses.clone()


def peaked_responses(scale: int, row: int, col: int, rival: int) -> torch.Tensor:
    """3×1×17×17 responses: a sharp maximum (scale, row, col) and a weaker one on scale ``rival`` elsewhere."""
    r = torch.full((3, 1, 17, 17), -1.0)
    r[scale, 0, row, col] = 4.0
    r[rival, 0, 16 - row, 16 - col] = 3.6
    return r


@pytest.mark.parametrize(("scale", "row", "col", "rival"), [(1, 8, 8, 0), (0, 2, 14, 1), (2, 15, 1, 1), (0, 0, 0, 2)])
def test_one_multiscale_step_matches_siamfc_pytorch(siamfc, scale, row, col, rival):
    responses = peaked_responses(scale, row, col, rival)
    frame = np.random.default_rng(1).integers(0, 256, (180, 320, 3), dtype=np.uint8)
    box = np.array([140.0, 60.0, 31.0, 47.0])  # 0-based x, y, w, h
    theirs = siamfc["Tracker"]()
    theirs.init(frame, box + [1, 1, 0, 0])
    theirs.net = FixedResponses(responses)
    want = np.asarray(theirs.update(frame), np.float64) - [1, 1, 0, 0]

    core = SiamFCCore(FixedResponses(responses), SiamFCConfig(clip_to_frame=False), torch.device("cpu"))
    frames = [torch.from_numpy(frame).permute(2, 0, 1)[None]]
    state = core.start(frames, np.array([0]), box[None])
    _, (result,) = core.step(frames, np.array([0]), state)
    np.testing.assert_allclose(result.box, want, atol=1e-4)  # siamfc-pytorch keeps its state in float32
    moved = np.abs(np.asarray(result.box[:2]) - box[:2]).max()
    assert (row, col) == (8, 8) or moved > 1  # an off-centre peak moves the box
    assert scale == 1 or abs(result.box[2] - box[2]) > 0.1  # the off-centre scale wins and the size changes


def test_upsampled_response_is_opencv_bicubic():
    import cv2

    from siamkit.ops.postprocess import upsample_responses

    resp = peaked_responses(1, 3, 12, 2)
    ours = upsample_responses(resp, 16).numpy()
    theirs = np.stack([cv2.resize(u[0].numpy(), (272, 272), interpolation=cv2.INTER_CUBIC) for u in resp])
    np.testing.assert_allclose(ours, theirs, atol=1e-4)
    assert np.unravel_index(ours[1].argmax(), ours[1].shape) == np.unravel_index(theirs[1].argmax(), theirs[1].shape)


def test_siamfc_boxes_match_siamfc_pytorch(siamfc, tmp_path):
    result = compare_siamfc(siamfc, tmp_path)
    assert len(result.ours) == 30
    assert result.max_box_px <= 0.5
    assert result.travel_px > 5

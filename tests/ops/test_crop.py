"""The batched torch crop agrees with the NumPy/OpenCV float reference."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from siamkit.ops.crop import crop_batch, crop_numpy, crop_origin


def naive_crop(image, centre, size, out):
    """Independent reference: explicit padding then per-pixel bilinear sampling in float64."""
    s = int(round(size))
    h, w, c = image.shape
    avg = image.reshape(-1, c).mean(0)
    x0, y0 = crop_origin(centre[0], s), crop_origin(centre[1], s)
    square = np.empty((s, s, c))
    for r in range(s):
        for q in range(s):
            y, x = y0 + r, x0 + q
            square[r, q] = image[y, x] if 0 <= y < h and 0 <= x < w else avg
    result = np.empty((out, out, c))
    for i in range(out):
        v = min(max((i + 0.5) * s / out - 0.5, 0), s - 1)
        for j in range(out):
            u = min(max((j + 0.5) * s / out - 0.5, 0), s - 1)
            ul, vl = int(np.floor(u)), int(np.floor(v))
            uh, vh = min(ul + 1, s - 1), min(vl + 1, s - 1)
            fu, fv = u - ul, v - vl
            top = square[vl, ul] * (1 - fu) + square[vl, uh] * fu
            bottom = square[vh, ul] * (1 - fu) + square[vh, uh] * fu
            result[i, j] = top * (1 - fv) + bottom * fv
    return result


def test_reference_matches_naive_bilinear():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    for centre, size, out in [((10.3, 12.8), 17, 9), ((-3, 5), 11, 23), ((38, 28), 20, 20)]:
        expected = naive_crop(image, centre, size, out)
        np.testing.assert_allclose(crop_numpy(image, centre, size, out), expected, atol=2e-3)


@settings(max_examples=60, deadline=None)
@given(
    cx=st.floats(-150, 450),
    cy=st.floats(-150, 350),
    size=st.floats(3, 500),
    out=st.sampled_from([15, 127, 255]),
    seed=st.integers(0, 10),
)
def test_batched_torch_crop_matches_reference(cx, cy, size, out, seed):
    """Includes squares partly or wholly outside the image (the padding colour fills them)."""
    image = np.random.default_rng(seed).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    avg = image.reshape(-1, 3).mean(0)
    ref = crop_numpy(image, (cx, cy), size, out, avg)
    frames = torch.from_numpy(image).permute(2, 0, 1)[None]
    for backend in ("torch", "opencv"):
        got = crop_batch(frames, torch.tensor([[cx, cy]]), torch.tensor([size]), out, torch.tensor(avg)[None],
                         backend=backend)
        assert np.abs(got[0].permute(1, 2, 0).numpy() - ref).max() <= 1e-3


def test_many_boxes_from_many_frames_at_once():
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (3, 50, 70, 3), dtype=np.uint8)
    centres = torch.tensor([[10.0, 10.0], [60.0, 45.0], [-30.0, 20.0], [35.0, 25.0]])
    sizes = torch.tensor([21.0, 40.0, 25.0, 100.0])
    index = torch.tensor([0, 2, 1, 2])
    avg = torch.tensor(images.reshape(3, -1, 3).mean(1))[index]
    frames = torch.from_numpy(images).permute(0, 3, 1, 2)
    got = crop_batch(frames, centres, sizes, 31, avg, frame_index=index, backend="torch")
    assert got.shape == (4, 3, 31, 31)
    torch.testing.assert_close(crop_batch(frames, centres, sizes, 31, avg, frame_index=index), got, atol=1e-3, rtol=0)
    for b in range(4):
        ref = crop_numpy(images[index[b]], centres[b].tolist(), float(sizes[b]), 31, avg[b].numpy())
        np.testing.assert_allclose(got[b].permute(1, 2, 0).numpy(), ref, atol=1e-3)


def test_wholly_outside_crop_is_the_padding_colour():
    image = np.full((20, 20, 3), 7, np.uint8)
    avg = torch.tensor([[1.0, 2.0, 3.0]])
    got = crop_batch(torch.from_numpy(image).permute(2, 0, 1)[None], torch.tensor([[500.0, 500.0]]),
                     torch.tensor([30.0]), 16, avg)
    assert torch.equal(got[0, :, 0, 0], avg[0]) and torch.allclose(got, avg.view(1, 3, 1, 1).expand_as(got))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_crop_runs_on_cuda():
    image = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    frames = torch.from_numpy(image).permute(2, 0, 1)[None].cuda()
    got = crop_batch(frames, torch.tensor([[20.0, 20.0]]), torch.tensor([30.0]), 15, torch.zeros(1, 3))
    ref = crop_numpy(image, (20, 20), 30, 15, np.zeros(3))
    assert got.is_cuda and np.abs(got[0].permute(1, 2, 0).cpu().numpy() - ref).max() <= 1e-3


@pytest.mark.parametrize("side,out", [(40, 127), (77, 255), (255, 255), (300, 255)])
def test_crops_placed_by_their_top_left_pixel_are_the_same_in_every_crop_function(side, out):
    """origin_centres turns top-left pixels into centres: uint8 crops by origin = crops by those centres."""
    from siamkit.ops.crop import crop_cv2_uint8, crop_like_original, origin_centres

    rng = np.random.default_rng(side)
    img = rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)
    avg = img.reshape(-1, 3).mean(0)
    frame = torch.from_numpy(img).permute(2, 0, 1)[None]
    for origin in ((-7, 3), (50, -20), (100, 80), (0, 0)):
        sides = torch.tensor([float(side)], dtype=torch.float64)
        centre = origin_centres(torch.tensor([origin]), sides)
        assert (crop_origin(float(centre[0, 0]), side), crop_origin(float(centre[0, 1]), side)) == origin
        want = crop_cv2_uint8(img, (0.0, 0.0), side, out, avg, origin=origin)
        got = crop_like_original(frame, centre[0], sides[0], out, torch.from_numpy(avg),
                                 origin=torch.tensor(origin))
        np.testing.assert_array_equal(got.numpy(), want.numpy())
        for backend in ("torch", "opencv"):
            batch = crop_batch(frame, centre, sides, out, torch.from_numpy(avg)[None], backend=backend, quantize=True)
            np.testing.assert_array_equal(batch.numpy(), want.numpy())

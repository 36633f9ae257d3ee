"""Third-party weights are read as tensors only: a crafted ``.pth`` runs nothing, a text file is one line."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch


@pytest.fixture
def frames(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(2):
        cv2.imwrite(str(folder / f"{i:04d}.png"), np.full((48, 64, 3), 40 * i, np.uint8))
    return folder


@pytest.mark.parametrize("tracker", ["siamrpn", "nanotrack", "siamban"])
def test_a_crafted_pth_runs_no_code(tmp_path, frames, cli, payload, tracker):
    code_object, marker = payload
    torch.save({"state_dict": {"x": code_object}}, tmp_path / "evil.pth")
    code, _, err = cli("track", frames, "--box", "10,10,20,20", "--tracker", tracker, "--weights",
                       tmp_path / "evil.pth")
    assert code == 2 and err.startswith("siamkit: error:") and err.count("\n") == 1, err
    assert not marker.exists()


def test_a_text_file_named_pth_is_one_line(tmp_path, frames, cli):
    (tmp_path / "model.pth").write_text("<html>404 Not Found</html>")
    code, _, err = cli("track", frames, "--box", "10,10,20,20", "--tracker", "siamrpn", "--weights",
                       tmp_path / "model.pth")
    assert code == 2 and "not a PyTorch checkpoint" in err and err.count("\n") == 1, err

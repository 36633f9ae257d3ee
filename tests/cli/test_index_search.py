"""`siamkit index build` and `siamkit search` end to end with a tiny zoo model."""

from __future__ import annotations

import json

import pytest
from test_index import make_model_and_images

from siamkit.cli import main


def _run(capsys, *args):
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def test_index_build_then_search(tmp_path, capsys):
    weights, folder = make_model_and_images(tmp_path)
    out = tmp_path / "gallery"
    code, stdout, stderr = _run(capsys, "index", "build", str(folder), "--model", str(weights), "--out", str(out))
    assert code in (0, None), stderr
    assert "indexed 6 images" in stdout
    assert json.loads((out / "gallery.json").read_text())["count"] == 6
    assert not (out / ".partial-embeddings").exists()  # the resume checkpoint is removed once saved
    code, stdout, stderr = _run(capsys, "search", str(out), str(folder / "alice" / "2.png"), "-k", "3", "--json")
    assert code in (0, None), stderr
    rows = json.loads(stdout)
    assert [r["rank"] for r in rows] == [1, 2, 3]
    assert rows[0]["id"] == "alice/2.png" and rows[0]["identity"] == "alice"
    assert rows[0]["score"] == pytest.approx(1.0, abs=1e-5) and rows[0]["score"] >= rows[1]["score"]
    code, stdout, _ = _run(capsys, "search", str(out), str(folder / "bob" / "0.png"), "-k", "2")
    assert code in (0, None) and "bob/0.png" in stdout.splitlines()[0]


def test_cli_errors_are_one_line(tmp_path, capsys):
    weights, folder = make_model_and_images(tmp_path)
    out = str(tmp_path / "x")
    code, _, stderr = _run(capsys, "index", "build", str(tmp_path / "nope"), "--model", str(weights), "--out", out)
    assert code == 2 and "Image folder not found" in stderr and "Traceback" not in stderr
    code, _, stderr = _run(capsys, "search", str(tmp_path / "nothing"), str(folder / "bob" / "0.png"))
    assert code == 2 and "Gallery folder not found" in stderr
    code, _, stderr = _run(
        capsys, "index", "build", str(folder), "--model", str(weights), "--out", out, "--kind", "lsh"
    )
    assert code == 2 and "Unknown index kind" in stderr
    assert not (tmp_path / "x").exists()

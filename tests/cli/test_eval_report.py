"""`siamkit eval` + `siamkit report` end to end on two short shared clips with OpenCV KCF."""

import json

import pytest
from conftest import shared_path

from siamkit.cli import main


def _cli(capsys, *argv):
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    out = capsys.readouterr()
    return exit_info.value.code, out.out, out.err


def test_eval_then_report(tmp_path, capsys):
    clips = shared_path("tracking")
    common = ["--dataset", f"otb:{clips}", "--sequences", "Biker,MountainBike", "--max-frames", "12"]
    code, out, _ = _cli(capsys, "eval", "--tracker", "opencv:kcf", "--out", str(tmp_path / "kcf"), *common)
    assert code in (0, None), out
    assert "opencv:kcf · ope · 2 sequences · AUC" in out
    assert (tmp_path / "kcf" / "Biker.txt").read_text().count("\n") == 12
    assert (tmp_path / "kcf" / "MountainBike_time.txt").is_file()
    code, out, _ = _cli(
        capsys,
        "eval",
        "--tracker",
        "opencv:kcf",
        "--option",
        "detect_thresh=0.5",
        "--out",
        str(tmp_path / "k2"),
        *common,
    )
    assert code in (0, None)
    code, out, _ = _cli(capsys, "report", str(tmp_path / "kcf"), str(tmp_path / "k2"), "--out", str(tmp_path / "rep"))
    assert code in (0, None), out
    saved = json.loads((tmp_path / "rep" / "report.json").read_text())
    ranked = saved["ope"]
    assert [r["rank"] for r in ranked] == [1, 2]
    assert ranked[0]["AUC"] >= ranked[1]["AUC"]
    metrics = json.loads((tmp_path / "kcf" / "metrics.json").read_text())
    entry = next(r for r in ranked if r["folder"] == str(tmp_path / "kcf"))
    assert entry["AUC"] == pytest.approx(metrics["overall"]["success_auc"])  # re-scored from the saved files
    for name in ("ope_success.png", "ope_success.svg", "ope_precision.png", "ope_precision.svg", "report.md"):
        assert (tmp_path / "rep" / name).stat().st_size > 0
    assert "| 1 |" in (tmp_path / "rep" / "report.md").read_text()
    # bad input: one line on stderr, exit status 2
    code, _, err = _cli(capsys, "eval", "--tracker", "opencv:kcf", "--dataset", "nope", "--out", str(tmp_path / "x"))
    assert code == 2 and err.startswith("siamkit: error:") and "KIND:PATH" in err
    code, _, err = _cli(capsys, "report", str(tmp_path / "rep"))
    assert code == 2 and "run.json missing" in err


def test_eval_without_tracker_uses_the_best_shipped_one(tmp_path, capsys):
    from siamkit.demo import best_tracker

    clips = shared_path("tracking")
    code, out, err = _cli(capsys, "eval", "--dataset", f"otb:{clips}", "--sequences", "Biker", "--max-frames", "4",
                          "--out", str(tmp_path / "best"), "--device", "cpu")
    assert code in (0, None), out + err
    name = best_tracker()[0]
    assert name == "nanotrack_lite0" and f"tracker: {name} (the default shipped model" in err
    assert f"{name} · ope · 1 sequences" in out

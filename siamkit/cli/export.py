"""``siamkit export``: a tracker's template and search branches as ONNX and TorchScript graphs."""

from __future__ import annotations

import typer

from siamkit.cli import app
from siamkit.errors import ConfigError


@app.command("export")
def export(
    name: str = typer.Argument(..., help="Tracker name, e.g. siamfc."),
    onnx: str = typer.Option(None, "--onnx", help="Folder for template.onnx, search.onnx and model.json."),
    torchscript: str = typer.Option(None, "--torchscript", help="Folder for template.pt and search.pt."),
    weights: str = typer.Option(None, help="Weights file or zoo name (default: the shipped weights)."),
) -> None:
    """Export the template branch and the search branch as separate graphs (checked against PyTorch)."""
    from siamkit.export import export_tracker

    if not onnx and not torchscript:
        raise ConfigError("Nothing to export.", hint="Pass --onnx DIR and/or --torchscript DIR.")
    from siamkit.safety import check_output_dir, check_weights_file

    check_weights_file(weights)
    for folder in {onnx, torchscript} - {None}:
        check_output_dir(folder, "export")
    if onnx:
        description = export_tracker(name, onnx, weights=weights, onnx=True, torchscript=torchscript == onnx)
        diff = description["onnx_max_abs_diff"]
        typer.echo(f"wrote {onnx}/template.onnx, {onnx}/search.onnx, {onnx}/model.json")
        typer.echo(
            f"onnxruntime vs PyTorch: template max |diff| {diff['template_max_abs_diff']:.2e} "
            f"(outputs up to {diff['template_max_abs']:.3g}), search {diff['search_max_abs_diff']:.2e} "
            f"(up to {diff['search_max_abs']:.3g})"
        )
    if torchscript and torchscript != onnx:
        export_tracker(name, torchscript, weights=weights, onnx=False, torchscript=True)
        typer.echo(f"wrote {torchscript}/template.pt, {torchscript}/search.pt")

"""``siamkit verify IMG_A IMG_B``: are two images the same identity? (distance + calibrated decision)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from siamkit.cli import app

DEFAULT_MODEL = "faces"  # the shipped face-verification model (ImageNet EfficientNet-Lite0, ORL)


def verify_pair(image_a: Path, image_b: Path, model: str = DEFAULT_MODEL, threshold: float | None = None,
                device: str | None = None) -> dict:
    """Embed both images with a zoo model; distance and decision at the model's calibrated threshold."""
    import math

    import torch

    from siamkit.data.preprocess import Preprocessing
    from siamkit.errors import ConfigError, WeightsError
    from siamkit.losses.distances import EuclideanDistance
    from siamkit.zoo import load_model

    net, entry = load_model(model, device=device or "cpu")
    meta = entry.meta
    for key in ("input_size", "channels", "normalize"):
        if key not in meta:
            raise WeightsError(
                f"Model {entry.name!r} has no {key!r} in its sidecar meta; it is not a verification model."
            )
    if threshold is not None and not (math.isfinite(threshold) and threshold >= 0):
        raise ConfigError(f"The threshold must be a finite distance >= 0, got {threshold}.",
                          hint="Pass e.g. --threshold 0.8, or leave it out to use the model's calibrated one.")
    if threshold is None:
        if "threshold" not in meta:
            raise WeightsError(f"Model {entry.name!r} has no calibrated threshold.", hint="Pass --threshold.")
        threshold = float(meta["threshold"])
    prep = Preprocessing.from_meta(meta)
    with torch.no_grad():
        emb = net(prep([prep.read(image_a), prep.read(image_b)]).to(next(net.parameters()).device)).float()
    distance = float(EuclideanDistance(eps=0.0).paired(emb[:1], emb[1:])[0])  # exact sqrt, no gradient needed
    return {"model": entry.name, "distance": distance, "threshold": threshold, "same": distance <= threshold}


@app.command("verify")
def verify(
    image_a: Path = typer.Argument(..., help="First image."),
    image_b: Path = typer.Argument(..., help="Second image."),
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m", help="Zoo model name or .safetensors path."),
    threshold: float | None = typer.Option(None, "--threshold", help="Override the calibrated distance threshold."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Decide whether two images show the same identity (prints distance, threshold and decision)."""
    result = verify_pair(image_a, image_b, model, threshold)
    if as_json:
        typer.echo(json.dumps(result))
        return
    verdict = "SAME" if result["same"] else "DIFFERENT"
    typer.echo(f"distance {result['distance']:.4f}  threshold {result['threshold']:.4f}  -> {verdict} "
               f"(model {result['model']})")

"""``siamkit search``: the gallery items most similar to a query image."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from siamkit.cli import app


@app.command("search")
def search(
    gallery_dir: Path = typer.Argument(..., help="Gallery folder written by `siamkit index build`."),
    image: Path = typer.Argument(..., help="Query image."),
    k: int = typer.Option(10, "-k", "--k", min=1, help="Number of results."),
    model: str = typer.Option(None, "--model", "-m", help="Embedding model (default: the one that built the gallery)."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
) -> None:
    """Print the K gallery items most similar to IMAGE (higher score = more similar)."""
    import torch

    from siamkit.errors import ConfigError
    from siamkit.index import Gallery, load_image_for
    from siamkit.zoo import load_model

    gallery = Gallery.load(gallery_dir)
    name = model or gallery.info.get("model")
    if not name:
        raise ConfigError(f"The gallery in {gallery_dir} does not say which model built it.", hint="Pass --model NAME.")
    net, entry = load_model(name, "cpu")
    with torch.inference_mode():
        query = net(load_image_for(entry, image)[None]).float().numpy()
    ids, scores, meta = gallery.search(query, k)
    rows = [
        {"rank": r + 1, "id": i, "score": float(s), **m}
        for r, (i, s, m) in enumerate(zip(ids[0], scores[0], meta[0], strict=True))
        if i != ""
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        typer.echo(f"{row['rank']:>4}  {row['score']:+.4f}  {row['id']}")

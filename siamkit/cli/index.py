"""``siamkit index build``: embed a folder of images with a zoo model and save a searchable gallery."""

from __future__ import annotations

import shutil
from pathlib import Path

import typer

from siamkit.cli import app
from siamkit.cli.options import check_device

index_app = typer.Typer(
    help="Build a gallery index from a folder of images.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(index_app, name="index")


@index_app.command("build")
def build(
    folder: Path = typer.Argument(..., help="Folder of images (searched recursively; sub-folder = identity)."),
    model: str = typer.Option(..., "--model", "-m", help="Zoo model name or path to its .safetensors file."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write the gallery to."),
    kind: str = typer.Option("flat", "--kind", help="flat (exact), ivf or hnsw (approximate, faster on large sets)."),
    metric: str = typer.Option("cosine", "--metric", help="cosine, ip (inner product) or l2."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Images embedded per forward pass."),
    device: str = typer.Option(None, "--device", callback=check_device,
                                help="cpu or cuda (default: cpu)."),
    nlist: int = typer.Option(None, "--nlist", min=1, help="IVF cells (default ≈ 4·√N)."),
    hnsw_m: int = typer.Option(32, "--hnsw-m", min=2, help="HNSW links per node."),
) -> None:
    """Embed every image under FOLDER with MODEL and save the gallery to OUT (rerun to resume)."""
    from siamkit.errors import ConfigError
    from siamkit.index import KINDS, Gallery
    from siamkit.safety import check_output_dir, check_outputs

    if kind not in KINDS:  # before any work is done or written
        raise ConfigError(f"Unknown index kind {kind!r}.", hint=f"Use one of: {', '.join(KINDS)}.")
    check_outputs({"gallery": out}, [folder])
    check_output_dir(out, "gallery")  # an unwritable folder fails now, not after embedding everything
    params = {"hnsw_m": hnsw_m}
    if nlist:
        params["nlist"] = nlist
    # embeddings of finished batches are kept here, so an interrupted build resumes where it stopped
    partial = Path(out) / ".partial-embeddings"
    gallery = Gallery.from_folder(
        folder, model, kind=kind, metric=metric, batch_size=batch_size, device=device, checkpoint=partial, **params
    )
    gallery.save(out)
    shutil.rmtree(partial, ignore_errors=True)
    typer.echo(f"siamkit: indexed {len(gallery)} images ({gallery.dim}-d, {kind}, {metric}) into {out}")

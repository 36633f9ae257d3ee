"""``siamkit serve``: the local web page for tracking in the browser."""

from __future__ import annotations

import typer

from siamkit.cli import app
from siamkit.cli.options import check_device


@app.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to bind; the default serves this machine only."),
    port: int = typer.Option(8000, min=1, max=65535, help="Port to listen on."),
    work_dir: str = typer.Option(None, help="Folder for uploads and results (default: a temporary folder)."),
    max_upload_mb: float = typer.Option(200.0, min=0.001, help="Largest accepted upload in MB."),
    max_uploads: int = typer.Option(20, min=1, help="Uploads kept at once (older ones expire after an hour)."),
    max_total_mb: float = typer.Option(2048.0, min=0.001, help="Total size of the uploads kept at once, in MB."),
    max_jobs: int = typer.Option(2, min=1, help="Trackings that run at the same time."),
    allow_host: list[str] = typer.Option(None, "--allow-host", help="Another name the page is opened with."),
    device: str = typer.Option(None, callback=check_device, help="cpu or cuda (default: cuda when available)."),
) -> None:
    """Start the local web page: upload a video, draw a box, track, watch and download the result."""
    import uvicorn

    from siamkit.serve.app import create_app

    if host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(f"siamkit: warning: serving on {host}: anyone who can reach it can upload videos.", err=True)
    application = create_app(work_dir=work_dir, max_upload_mb=max_upload_mb, max_jobs=max_jobs, device=device,
                             host=host, port=port, allowed_hosts=allow_host or (), max_uploads=max_uploads,
                             max_total_mb=max_total_mb)
    typer.echo(f"siamkit: open http://{host}:{port}/ in your browser (Ctrl-C to stop)")
    # Ctrl-C: open requests get 3 s, then running jobs stop at their next frame and the temp folder goes
    uvicorn.run(application, host=host, port=port, log_level="warning", timeout_graceful_shutdown=3)

"""``overspec drift BASE MODEL DATA``: layer-wise representation drift (registered on the app by ``cli.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from overspec._cli_common import MODEL_HELP
from overspec._cli_common import device_option as _device_option
from overspec._json import strict_dumps


def drift(
    base: Annotated[str, typer.Argument(help="The base model. " + MODEL_HELP)],
    model: Annotated[str, typer.Argument(help="The fine-tuned model (same architecture as BASE).")],
    data: Annotated[
        str,
        typer.Argument(
            help="A catalog name or dataset folder (as `eval` takes; its --split is used), or a folder of images."
        ),
    ],
    layers: Annotated[
        str,
        typer.Option(
            help="all, or a comma-separated list of layer names (block 3, embedding) or positions (-1: embedding)."
        ),
    ] = "all",
    n: Annotated[
        int | None, typer.Option("--n", help="A seeded random subset of N images (default: all).", min=4)
    ] = None,
    split: Annotated[str, typer.Option(help="The split of a dataset to use.")] = "test",
    root: Annotated[Path | None, typer.Option(help="Folder holding a catalog dataset's files.")] = None,
    k: Annotated[int, typer.Option("--k", help="Neighbours of mutual k-NN.", min=1)] = 10,
    permutations: Annotated[int, typer.Option(help="Shuffled pairings of the CKA permutation null.", min=2)] = 16,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    batch_size: Annotated[int | None, typer.Option(help="Images per forward pass.", min=1)] = None,
    workers: Annotated[int | None, typer.Option(help="Data loader workers (default: cores - 1).", min=0)] = None,
    device: Annotated[
        str | None,
        typer.Option(help="torch device: cpu, cuda, cuda:N, mps (default: cuda if present).", callback=_device_option),
    ] = None,
) -> None:
    """Layer-wise drift of MODEL from BASE on the same images: per block of the image tower (and the embedding),
    debiased linear CKA with its permutation null and calibrated score (cka - null_mean) / (1 - null_mean), and
    mutual k-NN overlap with its chance level k/(n-1). One forward pass per model for all layers, cached."""
    from overspec.analysis.drift import drift as run_drift

    result = run_drift(
        base,
        model,
        data,
        layers=layers,
        n=n,
        split=split,
        root=root,
        k=k,
        permutations=permutations,
        device=device,
        batch_size=batch_size,
        num_workers=workers,
    )
    if as_json:
        print(strict_dumps(result.document(), indent=1))
        return
    table = Table(title=f"drift of {result.model} from {result.base} on {result.dataset} (n={result.n})")
    for column in ("layer", "token", "CKA", "null (mean ± sd)", "calibrated", f"mutual {result.k}-NN", "chance"):
        table.add_column(column)
    for x in result.layers:
        table.add_row(
            x.layer,
            x.token,
            f"{x.cka:.4f}",
            f"{x.null_mean:+.4f} ± {x.null_std:.4f}",
            f"{x.calibrated:.4f}",
            f"{x.mutual_knn:.3f}",
            f"{x.knn_chance:.3f}",
        )
    Console().print(table)

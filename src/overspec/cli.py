"""The ``overspec`` command. Thin: it parses, calls the Python API and prints."""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from overspec import __version__
from overspec._json import strict_dumps
from overspec.errors import ConfigError, OverspecError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False)
out = Console()
err = Console(stderr=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _version(value: bool) -> None:
    if value:
        print(f"overspec {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool | None, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = None,
) -> None:
    """Measure what a foundation model loses, and gains, when fine-tuned for biometrics."""


def _print_rows(rows: list[dict], title: str, as_json: bool) -> None:
    if as_json:
        print(strict_dumps(rows, indent=1))
        return
    table = Table(title=title)
    for column in rows[0] if rows else ["name"]:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    out.print(table)


@app.command()
def models(as_json: JsonFlag = False) -> None:
    """The model zoo: name, family, architecture, and whether its weights are on this machine."""
    from overspec.models import weights_available, zoo

    rows = []
    for name in zoo():
        spec = zoo().get(name)
        rows.append(
            {"name": name, "family": spec.family, "arch": spec.arch or "", "available": weights_available(spec)}
        )
    _print_rows(rows, "models", as_json)


@app.command()
def datasets(as_json: JsonFlag = False) -> None:
    """The dataset catalog."""
    from overspec.data.catalog import catalog

    rows = []
    for name in catalog():
        entry = catalog().get(name)
        rows.append(
            {
                "name": name,
                "title": entry.title,
                "classes": entry.num_classes,
                "headline_metric": entry.headline_metric,
                "in_study": entry.in_study,
            }
        )
    _print_rows(rows, "datasets", as_json)


@app.command()
def protocols(as_json: JsonFlag = False) -> None:
    """The registered evaluation protocols."""
    from overspec.protocols import PROTOCOLS

    _print_rows([{"name": n} for n in PROTOCOLS], "protocols", as_json)


@app.command()
def embed(
    model: Annotated[str, typer.Argument(help="A zoo name or a model spec YAML file.")],
    images: Annotated[Path, typer.Argument(help="Folder of images (searched recursively).")],
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the (N, D) float32 .npy.")],
    batch_size: Annotated[
        int | None, typer.Option(help="Images per forward pass [default: 16 on a CPU, 64 on a GPU].", min=1)
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Data loader workers (default: cores - 1).")] = None,
    device: Annotated[str | None, typer.Option(help="torch device, e.g. cuda or cpu.")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the feature cache.")] = False,
) -> None:
    """Embed every image under IMAGES in sorted path order; the paths go to OUT with suffix .paths.txt."""
    if no_cache:
        os.environ["OVERSPEC_CACHE_WRITE"] = "0"  # the weights' digest memo is not written either
    import numpy as np

    from overspec.data import ImageFiles, list_images
    from overspec.features import extract_features

    paths = list_images(images)
    encoder = _load_encoder(model, device or _default_device())
    features = extract_features(
        encoder, ImageFiles(paths, root=images), cache=not no_cache, batch_size=batch_size, num_workers=workers
    )
    out_file.parent.mkdir(parents=True, exist_ok=True)
    np.save(out_file, features)
    paths_file = out_file.with_suffix(".paths.txt")
    paths_file.write_text("".join(f"{p.relative_to(images)}\n" for p in paths))
    err.print(f"wrote {features.shape[0]} x {features.shape[1]} features to {out_file} and paths to {paths_file}")


def _load_encoder(model: str, device: str):
    """The model, with torch's threads set to the cores this process may use (``_threads.py``)."""
    from overspec._threads import set_torch_threads
    from overspec.models import load_model

    encoder = load_model(model, device=device)
    set_torch_threads()
    return encoder


@app.command("eval")
def evaluate(
    model: Annotated[str, typer.Argument(help="A zoo name or a model spec YAML file.")],
    dataset: Annotated[str, typer.Argument(help="A catalog name (see `overspec datasets`) or a dataset folder.")],
    protocol: Annotated[
        str, typer.Option(help="Protocols, comma-separated: zeroshot, linear_probe (one forward pass for all).")
    ] = "zeroshot",
    root: Annotated[Path | None, typer.Option(help="Folder holding a catalog dataset's files.")] = None,
    as_json: JsonFlag = False,
    k_shot: Annotated[int | None, typer.Option(help="Linear probe on k examples per class.")] = None,
    probe_recipe: Annotated[
        str | None,
        typer.Option(
            help="Linear-probe recipe: lbfgs (default), clip_benchmark, clip_benchmark_default or clip_paper."
        ),
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Images per forward pass [default: 16 on a CPU, 64 on a GPU].", min=1)
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Data loader workers (default: cores - 1).")] = None,
    device: Annotated[str | None, typer.Option(help="torch device, e.g. cuda or cpu.")] = None,
) -> None:
    """Evaluate MODEL on DATASET with one or more protocols, loading both once; metrics are fractions (with
    several protocols, --json prints a list)."""
    from overspec.compute import compute_for
    from overspec.data import load_dataset
    from overspec.models.identity import spec_fingerprint
    from overspec.protocols import PROTOCOLS
    from overspec.protocols.probe_recipes import PROBE_RECIPES
    from overspec.protocols.specs import general_protocols
    from overspec.results.memo import recall, remember, result_key

    protocols = [p.strip() for p in protocol.split(",") if p.strip()]
    unknown = [p for p in protocols if p not in general_protocols()]
    if unknown or not protocols:
        raise ConfigError(f"--protocol {protocol!r}: use one or more of {', '.join(general_protocols())}")
    if probe_recipe is not None and "linear_probe" not in protocols:
        raise ConfigError("--probe-recipe applies to --protocol linear_probe only")
    if probe_recipe is not None and probe_recipe not in PROBE_RECIPES:
        raise ConfigError(f"--probe-recipe: {PROBE_RECIPES.unknown_message(probe_recipe)}")
    data = load_dataset(dataset, root=root)
    device = device or _default_device()
    common = {"batch_size": batch_size, "num_workers": workers, "progress": not as_json}
    probe = {"k_shot": k_shot} if k_shot else {}
    probe |= {"recipe": probe_recipe} if probe_recipe is not None else {}
    options = {name: probe if name == "linear_probe" else {} for name in protocols}
    identity = {"model": spec_fingerprint(model), "data": data.fingerprint, "compute": compute_for(device).key}
    keys = {name: result_key(protocol=name, options=options[name], **identity) for name in protocols}
    found = {name: recall(key) for name, key in keys.items()}
    encoder = None
    for name in protocols:  # features are extracted once and cached, so a second protocol reuses them
        if found[name] is None:
            encoder = encoder or _load_encoder(model, device)
            found[name] = remember(keys[name], PROTOCOLS.get(name)(encoder, data, **common, **options[name]))
    results = [found[name] for name in protocols]
    model_name = results[0].model
    if as_json:
        shown = [r.as_json() for r in results]
        print(strict_dumps(shown[0] if len(shown) == 1 else shown, indent=1))
        return
    for name, result in zip(protocols, results, strict=True):
        table = Table(title=f"{name}: {model_name} on {data.name}")
        table.add_column("metric")
        table.add_column("value")
        for key, value in result.metrics.items():
            table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
        if "recipe" in result.details:
            table.add_row("recipe", result.details["recipe"])
        for key in ("l2", "sklearn_C", "weight_decay", "C", "validation_acc1"):
            if key in result.details:
                table.add_row(key, f"{result.details[key]:.4g}")
        out.print(table)


@app.command()
def fetch(
    names: Annotated[list[str] | None, typer.Argument(help="Catalog datasets, zoo models or benchmarks.")] = None,
    config: Annotated[Path | None, typer.Option(help="Fetch what this experiment needs and lacks.")] = None,
    split: Annotated[str, typer.Option(help="Dataset splits, comma-separated.")] = "test,train",
    root: Annotated[Path | None, typer.Option(help="Datasets go to ROOT/<name> (default $OVERSPEC_DATA).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the files and bytes; download nothing.")] = False,
) -> None:
    """Download published data and weights into the layout overspec reads, and check them; for what is not
    downloadable (study checkpoints, biometric sets) print where to get it and where to put it."""
    from overspec.fetch import fetch as fetch_items
    from overspec.fetch.plan import human

    if not names and config is None:
        raise typer.BadParameter("name what to fetch (e.g. mnist clip-vit-b16.openai) or pass --config CONFIG")
    outcome = fetch_items(
        names,
        config=config,
        splits=tuple(s for s in split.split(",") if s),
        root=root,
        dry_run=dry_run,
        log=lambda line: err.print(line, markup=False, highlight=False, soft_wrap=True),
    )
    if dry_run:
        for transfer in outcome.transfers:
            for f in transfer.files:
                print(f"{f.size:>14}  {transfer.local(f)}")
        total = sum(t.total_bytes for t in outcome.transfers)
        pending = sum(f.size for t in outcome.transfers for f in t.pending())
        print(
            f"{sum(len(t.files) for t in outcome.transfers)} files, {human(total)} ({total} bytes); "
            f"{human(pending)} not yet here"
        )
    for item in outcome.manual:
        err.print("by hand: " + item.instructions(), markup=False, highlight=False, soft_wrap=True)
    if not dry_run and not outcome.done and not outcome.manual:
        err.print("nothing to fetch: everything the config reads is here", markup=False, highlight=False)


@app.command()
def validate(config: Annotated[Path, typer.Argument(help="Experiment YAML.")]) -> None:
    """Check an experiment config: schema, model names, and every weights file, dataset folder and benchmark
    file it reads (all missing ones listed, each with where to get it)."""
    from overspec.config import load_config
    from overspec.errors import ConfigError
    from overspec.fetch import describe, missing_items
    from overspec.fetch.manual import ManualItem
    from overspec.runner import plan

    missing = [item for item in missing_items(config) if not item.present()]
    for item in missing:
        err.print(describe(item, config), markup=False, highlight=False, soft_wrap=True)
    if missing:
        fetchable = sum(1 for item in missing if not isinstance(item, ManualItem))
        raise ConfigError(
            f"{config}: {len(missing)} file(s) the experiment reads are missing (listed above); "
            f"`overspec fetch --config {config}` gets the {fetchable} fetchable one(s), the rest say where to get them"
        )
    experiment = load_config(config)
    cells = plan(experiment)
    print(f"{config}: valid; {len(experiment.model_entries())} models, {len(cells)} cells")


def _shard(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        index, count = (int(part) for part in value.split("/"))
    except ValueError:
        raise typer.BadParameter(f"--shard takes I/N, e.g. 0/4; got {value!r}") from None
    return index, count


@app.command("run")
def run_command(
    config: Annotated[Path, typer.Argument(help="Experiment YAML.")],
    out_dir: Annotated[Path | None, typer.Option("--out", help="Run directory (default: the config's output).")] = None,
    limit: Annotated[int | None, typer.Option(help="Run at most N unfinished cells.")] = None,
    shard: Annotated[str | None, typer.Option(help="Run shard I of N (I/N), e.g. for SLURM job arrays.")] = None,
    executor: Annotated[
        str | None, typer.Option(help="How cells run: local or ray (default: the config's executor.name).")
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="Ray cluster: auto or ray://HOST:PORT (default: start one here).")
    ] = None,
    cpus_per_cell: Annotated[float | None, typer.Option(help="Ray: CPUs per model worker.")] = None,
    gpus_per_cell: Annotated[float | None, typer.Option(help="Ray: GPUs per model worker.")] = None,
    fetch_missing: Annotated[
        bool, typer.Option("--fetch", help="First fetch the missing data and weights that can be fetched.")
    ] = False,
) -> None:
    """Plan, evaluate (skipping finished cells), store, analyse and report."""
    from overspec._validation import validated
    from overspec.config import ExecutorSettings, load_config
    from overspec.runner import run_experiment

    if fetch_missing:
        fetch(None, config=config, split="test,train", root=None, dry_run=False)

    experiment = load_config(config)
    given = {"name": executor, "address": address, "cpus_per_cell": cpus_per_cell, "gpus_per_cell": gpus_per_cell}
    settings = validated(
        ExecutorSettings,
        experiment.executor.model_dump() | {k: v for k, v in given.items() if v is not None},
        origin="the executor options",
    )
    summary = run_experiment(
        experiment,
        out=out_dir,
        limit=limit,
        shard=_shard(shard),
        executor=settings,
        log=lambda line: err.print(line, markup=False, highlight=False),
    )
    err.print(
        f"ran {summary.ran} cells, skipped {summary.skipped} finished; results in {summary.out}/results.csv, "
        f"report in {summary.out}/report.html",
        markup=False,
        highlight=False,
    )


@app.command()
def analyze(
    results_csv: Annotated[Path, typer.Argument(help="A table with model, dataset, protocol, value columns.")],
    baseline: Annotated[
        str | None, typer.Option(help="One base for every other model (same architecture where there are several).")
    ] = None,
    base: Annotated[
        list[str] | None, typer.Option(help="MODEL=BASE, repeatable; overrides the table's base column.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """GELO per model and protocol against each model's own base, per-dataset changes, intervals and
    significance, from any results table (a run's results.csv carries a base column)."""
    from overspec.analysis import analyse, assign_bases, read_table

    results = analyse(assign_bases(read_table(results_csv), baseline=baseline, pairs=base or [], origin=results_csv))
    if as_json:
        print(strict_dumps([r.as_json() for r in results], indent=1))
        return
    table = Table(title="GELO against each model's base")
    for column in ("model", "arch", "protocol", "base", "GELO", "95% interval", "mean", "base mean", "datasets", "p"):
        table.add_column(column)
    for r in results:
        p = "" if r.p_value is None else f"{r.p_value:.3g}"
        table.add_row(
            r.model,
            r.arch,
            r.protocol,
            r.baseline,
            f"{r.gelo:.3f}",
            f"[{r.ci[0]:.3f}, {r.ci[1]:.3f}]",
            f"{r.mean:.4g}",
            f"{r.base_mean:.4g}",
            str(r.n_datasets),
            p,
        )
    out.print(table)


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run directory holding results.sqlite.")],
    reference: Annotated[Path | None, typer.Option(help="Published numbers (CSV) to show beside yours.")] = None,
) -> None:
    """Rebuild report.md, report.html, tables and figures from a run's stored results."""
    from overspec.report import build_report

    path = build_report(run_dir, reference=reference)
    err.print(f"report: {path}", markup=False, highlight=False)


@app.command()
def quickstart(
    out_dir: Annotated[Path, typer.Option("--out", help="Run directory.")] = Path("run/quickstart"),
    scale: Annotated[float, typer.Option(help="Shrink the data (e.g. 0.3) for a faster look.")] = 1.0,
    retrain: Annotated[
        bool, typer.Option(help="Fine-tune the specialists here instead of using the shipped ones.")
    ] = False,
    export_adapters: Annotated[
        Path | None, typer.Option(help="Copy the specialists' adapters there (maintainers).")
    ] = None,
) -> None:
    """The study in miniature, offline, on real weights and images: results.csv, report.md, report.html."""
    from overspec.quickstart.run import quickstart as run_quickstart

    report_path = run_quickstart(
        out_dir,
        scale=scale,
        retrain=retrain,
        export_adapters=export_adapters,
        log=lambda line: err.print(line, markup=False, highlight=False),
    )
    err.print(f"report: {report_path}", markup=False, highlight=False)


@app.command()
def finetune(
    config: Annotated[Path, typer.Argument(help="Fine-tune YAML (see README).")],
    nproc: Annotated[
        int, typer.Option(help="Data-parallel processes on this machine (one per GPU), started with torchrun.")
    ] = 1,
) -> None:
    """LoRA or full fine-tuning for FR, MAD or PAD; checkpoints every epoch, resumes, writes
    <output>/model.yaml. Also runs under `torchrun` or `accelerate launch` for several GPUs or machines."""
    from overspec.finetune.config import load_finetune_config
    from overspec.finetune.train import finetune as train

    loaded = load_finetune_config(config)  # fail here, once, before starting processes
    if nproc > 1:
        from overspec.finetune.distributed import launch

        raise typer.Exit(launch(["finetune", str(config)], nproc))
    spec = train(loaded, log=lambda line: err.print(line, markup=False, highlight=False))
    err.print(f"model spec: {spec}", markup=False, highlight=False)


@app.command()
def sweep(
    model: Annotated[str, typer.Argument(help="The specialist: a peft model spec or a study checkpoint spec.")],
    experiment: Annotated[Path, typer.Argument(help="Experiment YAML whose suites evaluate every point.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Where points, results and the plot go.")],
    scales: Annotated[str, typer.Option(help="Comma-separated update scales in [0, 1].")] = "0,0.25,0.5,0.75,1",
    task: Annotated[str | None, typer.Option(help="The specialist's task: fr, mad or pad.")] = None,
    base: Annotated[
        str | None,
        typer.Option(help="The model MODEL was fine-tuned from: mix the two models' weights (WiSE-FT) instead."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Trade-off curve between a base (scale 0) and its specialist (scale 1): GELO and biometric score per
    point, the Pareto front and the knee."""
    from overspec.sweep import run_sweep

    try:
        values = [float(v) for v in scales.split(",")]
    except ValueError:
        raise typer.BadParameter(f"--scales takes numbers separated by commas, got {scales!r}") from None
    points = run_sweep(
        model,
        experiment,
        scales=values,
        out=out_dir,
        task=task,
        base=base,
        log=lambda line: err.print(line, markup=False, highlight=False),
    )
    if as_json:
        print(strict_dumps([p.__dict__ for p in points], indent=1))
        return
    table = Table(title=f"sweep of {model}")
    for column in ("scale", "GELO", "biometric", "Pareto", "knee", "spec"):
        table.add_column(column)
    for p in points:
        table.add_row(
            f"{p.scale:g}",
            f"{p.gelo:.4f}",
            f"{p.biometric:.4f}",
            "yes" if p.pareto else "",
            "yes" if p.knee else "",
            p.spec,
        )
    out.print(table)


class ScoreKind(StrEnum):
    verification = "verification"
    mad = "mad"
    pad = "pad"


class HigherMeans(StrEnum):
    genuine = "genuine"
    bonafide = "bonafide"
    impostor = "impostor"
    attack = "attack"


@app.command()
def score(
    kind: Annotated[ScoreKind, typer.Argument(help="verification, mad or pad.")],
    scores_csv: Annotated[Path, typer.Argument(help="CSV with score,label[,attack_type] columns.")],
    as_json: JsonFlag = False,
    higher_means: Annotated[
        HigherMeans, typer.Option(help="What a higher score means (default: genuine / bona fide).")
    ] = HigherMeans.genuine,
    threshold: Annotated[
        float | None, typer.Option(help="Threshold for APCER/BPCER/HTER/ACER (default: the EER threshold).")
    ] = None,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for 95% intervals (0: none).")] = 1000,
    bootstrap_rows: Annotated[
        int, typer.Option(help="Above this many rows, intervals come from a subsample of this size, rescaled.")
    ] = 200_000,
    convention: Annotated[
        str, typer.Option(help="Metric rules: iso (default), insightface, madation or foundpad (docs/conventions.md).")
    ] = "iso",
) -> None:
    """Metrics from a score file: ROC AUC, EER, TAR@FAR (verification) or ISO/IEC 30107-3 (MAD/PAD)."""
    from overspec.score_files import score_report

    positive = higher_means in (HigherMeans.genuine, HigherMeans.bonafide)
    report = score_report(
        scores_csv,
        kind.value,
        higher_means_positive=positive,
        threshold=threshold,
        n_bootstrap=bootstrap,
        convention=convention,
        max_rows=bootstrap_rows,
        progress=True,
    )
    if as_json:
        print(strict_dumps(report, indent=1))
        return
    table = Table(title=f"{kind.value} scores: {scores_csv}")
    table.add_column("metric")
    table.add_column("value")
    table.add_column("95% interval")
    shown = {k: v for k, v in report.items() if k not in ("ci", "ci_level")}
    for label, value, interval in _score_rows(shown, report.get("ci", {})):
        text = f"{value:.6g}" if isinstance(value, float) else str(value)
        table.add_row(label, text, f"[{interval[0]:.4g}, {interval[1]:.4g}]" if interval else "")
    out.print(table)


def _score_rows(values: dict, ci: dict, prefix: str = ""):
    """``(label, value, interval or None)`` for every leaf of the nested report (``bpcer_at_apcer @ 0.1``)."""
    for key, value in values.items():
        label = f"{prefix} @ {key}" if prefix else key
        interval = ci.get(key) if isinstance(ci, dict) else None
        if isinstance(value, dict):
            yield from _score_rows(value, interval if isinstance(interval, dict) else {}, label)
        else:
            yield label, value, interval if isinstance(interval, list) else None


def _default_device() -> str:
    from overspec.compute import default_device

    return default_device()


def run() -> None:
    """Entry point: an OverspecError becomes one line on stderr and exit code 2, never a traceback."""
    from overspec._atomic import disk_refused, storage_error

    try:
        try:
            app()
        except OSError as exc:  # a write anywhere (report, plots, tables) that the disk refuses
            if not disk_refused(exc):
                raise
            raise storage_error(Path(exc.filename or "a file"), exc) from None
    except OverspecError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":  # python -m overspec.cli (how torchrun starts each process)
    run()

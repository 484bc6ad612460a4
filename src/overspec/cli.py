"""The ``overspec`` command. Thin: it parses, calls the Python API and prints."""

from __future__ import annotations

import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from overspec import __version__
from overspec._cli_common import MODEL_HELP
from overspec._cli_common import device_option as _device_option
from overspec._cli_logging import LoggingGroup
from overspec._json import strict_dumps
from overspec._log import InfoLines
from overspec.errors import ConfigError, OverspecError
from overspec.input_schemas import SCHEMAS

try:  # the click that typer parses with: its own copy since typer 0.2x
    from typer._click import exceptions as _usage
except ImportError:  # pragma: no cover - older typer
    from click import exceptions as _usage

# Plain help text: rich markup would swallow "[default: ...]" and other bracketed text in option help.
app = typer.Typer(
    cls=LoggingGroup,  # -q/--quiet and -v/--verbose on every command
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
out = Console()
err = InfoLines()  # what a command says while it works: info log records, silenced by -q
fail = Console(stderr=True)  # error lines, never silenced

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
Track = Annotated[
    str | None,
    typer.Option(
        metavar="mlflow[:URI]",
        help="Log to MLflow: mlflow (a local store: the run folder's mlruns, or ./mlruns) or mlflow:URI "
        "(a tracking URI or a folder); needs overspec[track].",
    ),
]


Workers = Annotated[int | None, typer.Option(help="Data loader workers (default: cores - 1).", min=0)]
Device = Annotated[
    str | None,
    typer.Option(help="torch device: cpu, cuda, cuda:N, mps (default: cuda if present).", callback=_device_option),
]


def _version(value: bool) -> None:
    if value:
        from overspec._versions import library_lines

        print("\n".join([f"overspec {__version__}", *library_lines()]))
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool | None,
        typer.Option(
            "--version",
            callback=_version,
            is_eager=True,
            help="Print the versions of overspec, Python, torch (CUDA), open_clip, timm, transformers.",
        ),
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
def models(
    as_json: JsonFlag = False,
    resolve: Annotated[
        str | None,
        typer.Option(
            "--resolve",
            metavar="REF",
            help="Show the spec a model reference becomes (zoo name, spec file, hf-hub:ORG/REPO, "
            "open_clip:ARCH/TAG, timm/NAME.TAG, ORG/REPO).",
        ),
    ] = None,
) -> None:
    """The model zoo: name, family, architecture, and whether its weights are on this machine."""
    from overspec.models import resolve_spec, weights_available, zoo

    if resolve is not None:
        spec = resolve_spec(resolve).model_dump(mode="json", exclude_none=True, exclude_defaults=True)
        if as_json:
            print(strict_dumps(spec, indent=1))
        else:
            import yaml

            print(yaml.safe_dump(spec, sort_keys=False), end="")
        return

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


SchemaKind = StrEnum("SchemaKind", {kind: kind for kind in SCHEMAS})


@app.command()
def schema(kind: Annotated[SchemaKind, typer.Argument(help="config (experiment YAML) or model (model spec YAML).")]):
    """Print the JSON Schema of an experiment config or a model spec, for editors that validate YAML as it is typed."""
    from overspec.input_schemas import json_schema

    print(strict_dumps(json_schema(kind.value), indent=2))


@app.command()
def embed(
    model: Annotated[str, typer.Argument(help=MODEL_HELP)],
    images: Annotated[Path, typer.Argument(help="Folder of images (searched recursively).")],
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the (N, D) float32 .npy.")],
    batch_size: Annotated[
        int | None, typer.Option(help="Images per forward pass [default: 16 on a CPU, 64 on a GPU].", min=1)
    ] = None,
    workers: Workers = None,
    device: Device = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the feature cache.")] = False,
) -> None:
    """Embed every image under IMAGES in sorted path order; the paths go to OUT with suffix .paths.jsonl (one
    JSON string per line, so any file name, newlines included, is one line)."""
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
    paths_file = out_file.with_suffix(".paths.jsonl")
    paths_file.write_text("".join(json.dumps(str(p.relative_to(images))) + "\n" for p in paths))
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
    model: Annotated[str, typer.Argument(help=MODEL_HELP)],
    dataset: Annotated[
        str,
        typer.Argument(
            help="A catalog name or dataset folder (zeroshot, linear_probe); a .bin or pair list (face_verification); "
            "an IJB folder (ijb); a protocol CSV or dataset folder (attack_detection)."
        ),
    ],
    protocol: Annotated[
        str,
        typer.Option(
            help="Protocols, comma-separated (see `overspec protocols`): zeroshot, linear_probe (one forward pass for "
            "both), face_verification, ijb, attack_detection."
        ),
    ] = "zeroshot",
    root: Annotated[Path | None, typer.Option(help="Folder holding a catalog dataset's files.")] = None,
    as_json: JsonFlag = False,
    output: Annotated[Path | None, typer.Option("--output", help="Write the JSON document to this file.")] = None,
    convention: Annotated[
        str | None,
        typer.Option(
            help="Metric rules of each protocol that has a choice: iso, insightface, madation, foundpad; the probe's "
            "recipe (docs/conventions.md)."
        ),
    ] = None,
    task: Annotated[str | None, typer.Option(help="attack_detection: mad or pad.")] = None,
    layout: Annotated[
        str | None, typer.Option(help="attack_detection: csv (default) or a released layout (e.g. syn_mad22).")
    ] = None,
    frames_per_video: Annotated[
        int | None, typer.Option(help="attack_detection: frames sampled per video file (default 25).", min=1)
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option(
            help="A protocol option, [PROTOCOL.]KEY=VALUE, repeatable (e.g. scorer=probe, ijb.which=ijbb); "
            "without PROTOCOL it goes to each listed protocol that has it."
        ),
    ] = None,
    k_shot: Annotated[int | None, typer.Option(help="Linear probe on k examples per class.", min=1)] = None,
    probe_recipe: Annotated[
        str | None,
        typer.Option(
            help="Linear-probe recipe: lbfgs (default), clip_benchmark, clip_benchmark_default or clip_paper."
        ),
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Images per forward pass [default: 16 on a CPU, 64 on a GPU].", min=1)
    ] = None,
    workers: Workers = None,
    device: Device = None,
    track: Track = None,
) -> None:
    """Evaluate MODEL on DATASET with one or more protocols, loading both once; metrics are fractions with 95%
    intervals. --json prints, and --output writes, one versioned document with an entry per protocol
    (schema: overspec/schemas/eval.schema.json)."""
    from overspec.evaluation import evaluate as run_evaluation

    if track:
        from overspec.tracking import check, parse

        check(parse(track))
    names = [p.strip() for p in protocol.split(",") if p.strip()]
    options = _protocol_options(names, option or [])
    for flag, key, value in (("--k-shot", "k_shot", k_shot), ("--probe-recipe", "recipe", probe_recipe)):
        if value is not None:
            if "linear_probe" not in names:
                raise ConfigError(f"{flag} applies to --protocol linear_probe only")
            options.setdefault("linear_probe", {})[key] = value
    evaluation = run_evaluation(
        model,
        dataset,
        names,
        root=root,
        options=options,
        convention=convention,
        task=task,
        layout=layout,
        frames_per_video=frames_per_video,
        device=device,
        batch_size=batch_size,
        num_workers=workers,
    )
    document = evaluation.document()
    text = strict_dumps(document, indent=1, default=str)
    if output is not None:
        from overspec._atomic import atomic_write

        output.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(output, text + "\n")
    if track:
        from overspec.tracking import track_eval

        track_eval(track, document, output)
    if as_json:
        print(text)
        return
    for entry in document["results"]:
        name = f"{entry['protocol']} ({entry['convention']})"
        table = Table(title=f"{name}: {document['model']['name']} on {document['dataset']['name']}")
        for column in ("metric", "value", "95% interval"):
            table.add_column(column)
        for key, metric in entry["metrics"].items():
            value, interval = metric["value"], metric.get("interval")
            shown = f"{value:.4f}" if isinstance(value, float) else str(value)
            table.add_row(key, shown, f"[{interval[0]:.4f}, {interval[1]:.4f}]" if interval else "")
        for key, value in entry["counts"].items():
            table.add_row(key, str(value), "")
        details = entry["details"]
        for key in ("scorer", "k_shot"):
            if details.get(key) is not None:
                table.add_row(key, str(details[key]), "")
        for key in ("l2", "sklearn_C", "weight_decay", "C", "validation_acc1"):
            if key in details:
                table.add_row(key, f"{details[key]:.4g}", "")
        out.print(table)
    if output is not None:
        err.print(f"wrote {output}", markup=False, highlight=False)


def _protocol_options(protocols: list[str], pairs: list[str]) -> dict[str, dict]:
    """``--option [PROTOCOL.]KEY=VALUE`` pairs (VALUE read as YAML: true, 3, 0.5, text) as options per protocol;
    without PROTOCOL a key goes to each listed protocol that takes it."""
    import yaml

    from overspec.protocols import option_names

    options: dict[str, dict] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--option {pair!r}: write KEY=VALUE or PROTOCOL.KEY=VALUE, e.g. scorer=probe")
        target, dot, key = key.strip().rpartition(".")
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            parsed = value
        takers = [target] if dot else [p for p in protocols if key in option_names(p)]
        if not takers:
            raise ConfigError(f"--option {pair!r}: none of {', '.join(protocols)} has an option {key!r}")
        for name in takers:
            options.setdefault(name, {})[key] = parsed
    return options


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
    limit: Annotated[int | None, typer.Option(help="Run at most N unfinished cells.", min=0)] = None,
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
    track: Track = None,
) -> None:
    """Plan, evaluate (skipping finished cells), store, analyse and report; --track (or the config's track:) also
    logs parameters, every row's metrics, the report and the config to MLflow."""
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
        track=track,
    )
    if (summary.out / "results.sqlite").exists():
        from overspec.report.console import results_table

        out.print(results_table(summary.out))
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
    reference: Annotated[
        str,
        typer.Option(
            help="Published numbers to read yours against: a study's name (chettaoui2025), a CSV file, or none."
        ),
    ] = "chettaoui2025",
) -> None:
    """Rebuild report.md, report.html, tables and figures from a run's stored results; findings read each
    specialist's GELO against the published model of the same task and architecture."""
    from overspec.report import build_report

    path = build_report(run_dir, reference=reference)
    err.print(f"report: {path}", markup=False, highlight=False)


@app.command()
def browse(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run directories (each holding results.sqlite).")],
    out_file: Annotated[Path, typer.Option("--out", help="The page to write.")] = Path("compare.html"),
    reference: Annotated[
        str, typer.Option(help="The study whose published models are drawn beside yours (chettaoui2025), or none.")
    ] = "chettaoui2025",
) -> None:
    """One self-contained HTML page across runs: every result with its interval, convention and provenance
    (sortable, filterable), GELO against biometric gain with intervals and the published points, per-dataset
    changes, and a link to each run's report. Offline: nothing is fetched."""
    from overspec.report.browse import build_browse

    path = build_browse(run_dirs, out_file, reference=reference)
    err.print(f"browse: {path}", markup=False, highlight=False)


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
    frontier: Annotated[
        bool,
        typer.Option(
            "--frontier", help="Also the FR trade-off frontier and the FR+MAD+PAD merge (about 14 min more on 2 cores)."
        ),
    ] = False,
) -> None:
    """The study in miniature, offline, on real weights and images: results.csv, report.md, report.html."""
    from overspec.quickstart.run import quickstart as run_quickstart

    report_path = run_quickstart(
        out_dir,
        scale=scale,
        retrain=retrain,
        export_adapters=export_adapters,
        frontier=frontier,
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
    extrapolate: Annotated[
        bool, typer.Option("--extrapolate", help="Allow scales outside [0, 1] (beyond the base or the specialist).")
    ] = False,
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
        extrapolate=extrapolate,
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


@app.command()
def frontier(
    config: Annotated[Path, typer.Argument(help="Experiment YAML with a `frontier:` section.")],
    out_dir: Annotated[Path | None, typer.Option("--out", help="Run directory (default: the config's output).")] = None,
    executor: Annotated[str | None, typer.Option(help="local or ray (default: the config's).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Forgetting-control methods swept over their strength: per task the Pareto frontier of (biometric score,
    GELO), its hypervolume and each method's GELO at matched biometric score, with intervals."""
    from overspec.frontier.run import run_frontier
    from overspec.report.frontier import matched_rows

    path = run_frontier(
        config, out=out_dir, executor=executor, log=lambda line: err.print(line, markup=False, highlight=False)
    )
    summary = json.loads(path.read_text())
    if as_json:
        print(strict_dumps(summary, indent=1))
        return
    for task, data in summary["tasks"].items():
        if "error" in data:
            err.print(f"{task}: no frontier: {data['error']}", markup=False, highlight=False)
    for task, rows in matched_rows(summary).items():
        _print_rows(rows, f"{task}: GELO at matched biometric score", False)
    err.print(f"frontier: {path}", markup=False, highlight=False)


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
    scores_csv: Annotated[
        Path, typer.Argument(help="Score file: score,label[,attack_type,video,subject,pair] columns.")
    ],
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
    bootstrap_types: Annotated[
        int, typer.Option(help="Above this many attack types, only pooled keys get intervals.")
    ] = 20,
    convention: Annotated[
        str,
        typer.Option(
            help="Metric rules: iso (default), insightface, madation or foundpad, options after a colon "
            "(madation:float32); see `overspec conventions`."
        ),
    ] = "iso",
    float32: Annotated[
        bool, typer.Option("--float32", help="Same as CONVENTION:float32 (madation, foundpad: float32 scores).")
    ] = False,
    sep: Annotated[str, typer.Option(help="Column separator: comma (default), tab or space (any blanks).")] = ",",
    columns: Annotated[
        str | None,
        typer.Option(help="The file has no header: its columns in order, e.g. score,label or _,_,score,label."),
    ] = None,
) -> None:
    """Metrics from a score file: ROC AUC, EER, TAR@FAR (verification) or ISO/IEC 30107-3 (MAD/PAD), per attack
    type too, through the same function as `overspec run`."""
    from overspec.score_files import score_report

    positive = higher_means in (HigherMeans.genuine, HigherMeans.bonafide)
    if float32 and ":float32" not in convention:
        convention = f"{convention}:float32"
    report = score_report(
        scores_csv,
        kind.value,
        higher_means_positive=positive,
        threshold=threshold,
        n_bootstrap=bootstrap,
        convention=convention,
        max_rows=bootstrap_rows,
        max_types=bootstrap_types,
        sep=sep,
        columns=None if columns is None else columns.split(","),
        progress=True,
    )
    if as_json:
        print(strict_dumps(report, indent=1))
        return
    from overspec.report.tables import format_value

    table = Table(title=f"{kind.value} scores: {scores_csv} ({report['convention']})")
    table.add_column("metric")
    table.add_column("value")
    table.add_column("95% interval")
    unresolved, ci = report.get("unresolved", {}), report.get("ci", {})
    for key, value in report["metrics"].items():
        interval = ci.get(key)
        text = format_value(value, unresolved.get(key), percent=False)
        table.add_row(key, text, f"[{interval[0]:.4g}, {interval[1]:.4g}]" if interval else "")
    for key, value in report.items():
        if key not in ("metrics", "unresolved", "ci", "ci_level", "convention"):
            table.add_row(key, f"{value:.6g}" if isinstance(value, float) else str(value), "")
    out.print(table)


@app.command()
def conventions(as_json: JsonFlag = False) -> None:
    """The metric conventions: kinds, operating points, per-attack metrics, options and reference."""
    from overspec.metrics.conventions import CONVENTIONS

    rows = []
    for name in CONVENTIONS.names():
        rules = CONVENTIONS.get(name)
        rows.append(
            {
                "name": name,
                "kinds": ", ".join(rules.kinds),
                "operating_points": "; ".join(
                    f"{m}: {', '.join(f'{x:g}' for x in xs)}" for m, xs in rules.points.items()
                ),
                "per_attack": ", ".join(rules.per_attack),
                "options": ", ".join(rules.options),
                "reference": rules.reference,
            }
        )
    _print_rows(rows, "metric conventions", as_json)


@app.command()
def metrics(as_json: JsonFlag = False) -> None:
    """The metric registry: key name, meaning, direction, unit, operating point, and the key format."""
    from overspec.metrics.specs import METRICS

    rows = []
    for name in METRICS.names():
        spec = METRICS.get(name)
        rows.append(
            {
                "name": name,
                "display": spec.display,
                "higher_is_better": spec.higher_is_better,
                "unit": spec.unit,
                "point": spec.parameter or "",
            }
        )
    if not as_json:
        out.print("keys: [mean_|worst_]NAME[_POINT][@ATTACK_TYPE], e.g. bpcer_at_apcer_0.01@mipgan")
    _print_rows(rows, "metrics", as_json)


from overspec.cli_drift import drift as _drift  # noqa: E402 (it reads this module's option types)

app.command("drift")(_drift)


def _default_device() -> str:
    from overspec.compute import default_device

    return default_device()


def run() -> None:
    """Entry point: an OverspecError becomes one line on stderr and exit code 2, never a traceback."""
    from overspec._atomic import disk_refused, storage_error

    try:
        try:
            code = app(standalone_mode=False, prog_name="overspec")  # usage errors come here, as one line
        except OSError as exc:  # a write anywhere (report, plots, tables) that the disk refuses
            if not disk_refused(exc):
                raise
            raise storage_error(Path(exc.filename or "a file"), exc) from None
    except OverspecError as exc:
        fail.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except _usage.NoArgsIsHelpError as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except _usage.ClickException as exc:  # a bad option value, an unknown option, a missing argument
        command = f" {exc.ctx.command_path}" if getattr(exc, "ctx", None) else ""
        text = " ".join(exc.format_message().split())
        fail.print(f"error: {text} (see{command} --help)", markup=False, highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except typer.Abort:  # Ctrl-C, as click's standalone mode reports it
        fail.print("Aborted!", markup=False, highlight=False)
        sys.exit(1)
    if code:
        sys.exit(code)


if __name__ == "__main__":  # python -m overspec.cli (how torchrun starts each process)
    run()

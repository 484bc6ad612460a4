"""Input checked where it enters: numeric options, device strings, base chains, non-finite values, adapters that do
not apply, foreign or damaged stores and waits that never end each give one line naming the file and the fix."""

from __future__ import annotations

import pytest

from helpers.cli import overspec, write_yaml
from overspec.config import load_config
from overspec.errors import ConfigError


def _one_error_line(result) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    return line


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ("eval", "clip-vit-b16.openai", "cifar10", "--k-shot", "-1"),
            "error: Invalid value for '--k-shot': Input should be greater than or equal to 1 "
            "(see overspec eval --help)",
        ),
        (
            ("run", "x.yaml", "--limit", "-1"),
            "error: Invalid value for '--limit': Input should be greater than or equal to 0 (see overspec run --help)",
        ),
        (
            ("embed", "m", "imgs", "--out", "f.npy", "--workers", "-1"),
            "error: Invalid value for '--workers': Input should be greater than or equal to 0 "
            "(see overspec embed --help)",
        ),
        (
            ("eval", "m", "d", "--device", "nonsense"),
            "error: Invalid value for '--device': 'nonsense': not a torch device; use cpu, cuda, cuda:N, mps or xpu "
            "(see overspec eval --help)",
        ),
        (
            ("sweep", "m.yaml", "x.yaml", "--out", "o", "--scales", "-1,2"),
            "error: --scales: -1 is outside [0, 1] (0 = the base, 1 = the specialist); pass --extrapolate to "
            "evaluate beyond them",
        ),
        (
            ("sweep", "m.yaml", "x.yaml", "--out", "o", "--scales", "0.5,nan", "--extrapolate"),
            "error: --scales: nan is not a finite number; give scales such as 0,0.5,1",
        ),
    ],
)
def test_numeric_flags_and_device_strings_are_one_line(tmp_path, monkeypatch, command, args, expected):
    monkeypatch.chdir(tmp_path)
    assert command(*args) == expected
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_sweep_scales_beyond_the_ends_need_extrapolate():
    from overspec.sweep.curve import check_scales

    check_scales([0, 0.5, 1])
    check_scales([-1, 2], extrapolate=True)  # WiSE-FT-style extrapolation, asked for explicitly
    with pytest.raises(ConfigError, match=r"--scales: 1.5 is outside \[0, 1\]"):
        check_scales([0, 1.5])
    with pytest.raises(ConfigError, match=r"--scales: inf is not a finite number"):
        check_scales([float("inf")], extrapolate=True)


def _config(tmp_path, **extra) -> object:
    data = {"name": "x", "models": ["clip-vit-b16.openai"], "general": {"datasets": ["cifar10"], "root": "."}}
    return write_yaml(tmp_path / "x.yaml", {**data, **extra})


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            {"general": {"datasets": ["cifar10"], "options": {"linear_probe": {"k_shot": 2.5}}}},
            "key 'general.options': linear_probe.k_shot: Input should be a valid integer, got a number with a "
            "fractional part (got 2.5)",
        ),
        (
            {"general": {"datasets": ["cifar10"], "options": {"linear_probe": {"k_shot": -1}}}},
            "key 'general.options': linear_probe.k_shot: Input should be greater than or equal to 1 (got -1)",
        ),
        ({"workers": -1}, "key 'workers': Input should be greater than or equal to 0 (got -1)"),
        (
            {"device": "nonsense"},
            "key 'device': not a torch device; use cpu, cuda, cuda:N, mps or xpu (got 'nonsense')",
        ),
        (
            {"executor": {"cpus_per_cell": float("inf")}},
            "key 'executor.cpus_per_cell': Input should be a finite number",
        ),
    ],
)
def test_config_values_are_checked_by_the_schema(tmp_path, extra, expected):
    path = _config(tmp_path, **extra)
    with pytest.raises(ConfigError) as raised:
        load_config(path, check_paths=False)
    assert str(raised.value).startswith(f"{path}: {expected}")


def test_a_valid_k_shot_is_kept_and_typed(tmp_path):
    options = {"linear_probe": {"k_shot": 4}}
    path = _config(tmp_path, general={"datasets": ["cifar10"], "options": options})
    assert load_config(path, check_paths=False).general.options == {"linear_probe": {"k_shot": 4}}


def test_a_config_device_is_one_line_through_validate(tmp_path):
    path = _config(tmp_path, device="cuda:x")
    line = _one_error_line(overspec("validate", str(path)))  # a fresh process, as a user runs it
    assert line == (
        f"error: {path}: key 'device': not a torch device; use cpu, cuda, cuda:N, mps or xpu (got 'cuda:x')"
    )


def test_a_device_this_machine_lacks_is_one_line_before_loading(tmp_path):
    """cuda:99: no machine this runs on has a hundred GPUs; the check comes before the (absent) weights file."""
    from overspec.models import load_model

    with pytest.raises(ConfigError) as raised:
        load_model({"family": "openai_clip", "weights": str(tmp_path / "absent.pt")}, device="cuda:99")
    assert str(raised.value).startswith("device 'cuda:99': not on this machine, which has ")
    assert str(raised.value).endswith("; use cpu or a device it has")


def test_a_spec_whose_base_is_itself_is_one_line(tmp_path, face_dir, command):
    (tmp_path / "self.yaml").write_text("family: peft\nbase: self.yaml\ncheckpoint: adapter\n")
    me = tmp_path / "self.yaml"
    assert command("embed", str(me), str(face_dir), "--out", str(tmp_path / "f.npy")) == (
        f"error: {me}: key 'base': the specs name each other in a loop ({me} -> {me}); "
        "end the chain at a zoo name or a spec file without base"
    )
    assert not (tmp_path / "f.npy").exists()


def test_a_loop_through_an_inline_base_names_the_chain(tmp_path, monkeypatch):
    from overspec.models.identity import spec_fingerprint

    monkeypatch.chdir(tmp_path)  # an inline spec's relative paths are read from the current folder
    (tmp_path / "a.yaml").write_text("family: interpolate\nbase: clip-vit-b16.openai\ntarget: b.yaml\n")
    (tmp_path / "b.yaml").write_text("family: finetuned\nbase: {family: peft, base: a.yaml}\ncheckpoint: w.pt\n")
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    with pytest.raises(ConfigError) as raised:
        spec_fingerprint(str(a))
    assert str(raised.value) == (
        f"{b}: key 'base.base': the specs name each other in a loop ({a} -> {b} -> {a}); "
        "end the chain at a zoo name or a spec file without base"
    )


def _store_with_a_cell(path, value: float = 0.5):
    from overspec.results import ResultRow, ResultStore

    store = ResultStore(path)
    row = ResultRow("r1", "clip", "ViT-B/16", "cifar10", "general", "zeroshot", "acc1", value, n=10, cell="c1")
    store.add_cell("c1", [row], model="clip", dataset="cifar10", protocol="zeroshot", details={})
    return store


def test_a_foreign_database_is_refused_and_left_as_it_was(tmp_path, command):
    import sqlite3

    from overspec.results import ResultStore

    run = tmp_path / "run"
    run.mkdir()
    foreign = run / "results.sqlite"
    with sqlite3.connect(foreign) as db:  # another program's table of the same name, at our schema number
        db.execute("CREATE TABLE results (id INTEGER PRIMARY KEY, score REAL)")
        db.execute("INSERT INTO results VALUES (1, 0.5)")
        db.execute("PRAGMA user_version = 3")
    db.close()
    before = foreign.read_bytes()
    assert command("report", str(run)) == (
        f"error: {foreign}: its results table lacks column(s) run_id, model, arch, dataset and 14 more, so it was "
        "not written by overspec; point at a run folder's results.sqlite, or give the run another --out"
    )
    assert foreign.read_bytes() == before and sorted(p.name for p in run.iterdir()) == ["results.sqlite"]

    photos = tmp_path / "photos.sqlite"
    with sqlite3.connect(photos) as db:
        db.execute("CREATE TABLE photos (path TEXT)")
    db.close()
    before = photos.read_bytes()
    with pytest.raises(Exception) as raised:
        ResultStore(photos)
    assert str(raised.value) == (
        f"{photos}: not an overspec results store (it holds table(s) photos); point at a run folder's "
        "results.sqlite, or give the run another --out"
    )
    assert photos.read_bytes() == before


def test_a_full_disk_while_storing_is_one_line_and_keeps_the_cells_stored(tmp_path):
    """``PRAGMA max_page_count`` makes SQLite meet a full disk at the current size: SQLITE_FULL, as on a real one."""
    from overspec.errors import StorageError
    from overspec.results import ResultRow, ResultStore

    path = tmp_path / "results.sqlite"
    store = _store_with_a_cell(path)
    pages = store.db.execute("PRAGMA page_count").fetchone()[0]
    store.db.execute(f"PRAGMA max_page_count = {pages}")
    rows = [ResultRow("r1", "clip", "", "food101", "general", "zeroshot", f"m{i}", 0.1, cell="c2") for i in range(3000)]
    with pytest.raises(StorageError) as raised:
        store.add_cell("c2", rows, model="clip", dataset="food101", protocol="zeroshot", details={})
    assert str(raised.value) == (
        f"cannot write {path} (storing clip on food101 (zeroshot): database or disk is full); free space on its "
        "disk (or give the run an --out on a larger one) and rerun: cells already stored are kept"
    )
    store.close()
    again = ResultStore(path, create=False)
    assert [(r.cell, r.value) for r in again.rows()] == [("c1", 0.5)] and again.finished() == {"c1"}


@pytest.mark.parametrize("stored", [None, "'n/a'"])
def test_a_null_or_text_value_in_the_store_is_one_line(tmp_path, command, stored):
    run = tmp_path / "run"
    store = _store_with_a_cell(run / "results.sqlite")
    with store.db:
        store.db.execute(f"UPDATE results SET value = {'NULL' if stored is None else stored}")
    store.close()
    shown = "None" if stored is None else stored
    assert command("report", str(run)) == (
        f"error: {run / 'results.sqlite'}: results row 1 (clip, cifar10, zeroshot, acc1) has value {shown}, not a "
        "number: the store was edited or damaged; delete the row (DELETE FROM results WHERE rowid = 1) and rerun "
        "to compute it again"
    )


def test_a_nan_metric_is_not_stored_as_null(tmp_path):
    from overspec.errors import DataError

    path = tmp_path / "results.sqlite"
    with pytest.raises(DataError, match=r"clip on cifar10 \(zeroshot\): metric acc1 is nan \[None, None\], not a"):
        _store_with_a_cell(path, value=float("nan"))
    from overspec.results import ResultStore

    assert ResultStore(path, create=False).rows() == []


# --- nothing non-finite passes silently ---


def test_one_nan_weight_is_one_line_naming_the_tensor_and_the_file(tmp_path):
    import torch

    from helpers.models import tiny_clip
    from overspec.errors import ModelError
    from overspec.models import load_model

    state = tiny_clip().state_dict()
    state["visual.transformer.resblocks.0.mlp.c_fc.weight"][3, 5] = float("nan")
    torch.save(state, tmp_path / "nan.pt")
    spec = write_yaml(tmp_path / "nan.yaml", {"family": "openai_clip", "weights": str(tmp_path / "nan.pt")})
    with pytest.raises(ModelError) as raised:
        load_model(spec)
    assert str(raised.value) == (
        f"nan: tensor visual.transformer.resblocks.0.mlp.c_fc.weight holds NaN or inf after loading "
        f"{tmp_path / 'nan.pt'}; the file is damaged or comes from a diverged run: download or export it again"
    )


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"adapter_scale": float("nan")}, "key 'adapter_scale': Input should be a finite number (got nan)"),
        ({"lora": {"r": 2, "alpha": 4, "scale": float("inf")}}, "key 'lora.scale': Input should be a finite number"),
        (
            {"preprocess": {"mean": [float("nan"), 0.5, 0.5]}},
            "key 'preprocess': mean.0: Input should be a finite number (got nan)",
        ),
        ({"preprocess": {"std": [0.5, 0, 0.5]}}, "key 'preprocess': std: every std must be > 0 (got [0.5, 0, 0.5])"),
    ],
)
def test_non_finite_scales_and_preprocessing_are_refused_in_the_spec(tmp_path, extra, expected):
    from overspec.models.spec import load_spec_file

    path = write_yaml(tmp_path / "m.yaml", {"family": "peft", "base": "clip-vit-b16.openai", **extra})
    with pytest.raises(ConfigError) as raised:
        load_spec_file(path)
    assert str(raised.value).startswith(f"{path}: {expected}")


def test_nan_features_are_refused_before_they_are_cached(tmp_path, clip_file, face_dir):
    """Weights made NaN after the load check (as a NaN-producing forward pass would): the batch's features are
    checked, the first image is named, and the cache holds no entry."""
    import torch

    from overspec.data import ImageFiles
    from overspec.errors import ModelError
    from overspec.features import extract_features
    from overspec.models import load_model

    encoder = load_model({"family": "openai_clip", "weights": str(clip_file)})
    with torch.no_grad():
        encoder.module.visual.proj.fill_(float("inf"))
    paths = sorted(face_dir.glob("*.png"))
    with pytest.raises(ModelError) as raised:
        extract_features(encoder, ImageFiles(paths, root=face_dir), num_workers=0, progress=False, batch_size=4)
    assert str(raised.value) == (
        f"openai_clip:{clip_file.name}: the features of 4 of 4 images from image 0 ({paths[0]}) on are NaN or inf; "
        "check the model's weights, scales and preprocessing (none are cached)"
    )
    assert not list((tmp_path / "cache").rglob("*.npy"))


@pytest.mark.parametrize("bad", ["nan", "inf", "-Infinity"])
def test_analyze_of_a_non_finite_value_names_file_line_and_column(tmp_path, command, bad):
    table = f"model,dataset,protocol,value\nclip,a,zeroshot,0.5\nclip,b,zeroshot,0.6\nft,a,zeroshot,{bad}\n"
    (tmp_path / "t.csv").write_text(table + "ft,b,zeroshot,0.5\n")
    assert command("analyze", str(tmp_path / "t.csv"), "--baseline", "clip", "--json") == (
        f"error: {tmp_path / 't.csv'}, line 4: value {bad!r} is not a finite number; give the measured value, "
        "or leave the row out"
    )


# --- an adapter that is not applied ---


def _trained_adapter(folder):
    import torch
    from peft import LoraConfig, get_peft_model

    from helpers.models import tiny_clip

    torch.manual_seed(1)
    adapted = get_peft_model(tiny_clip(), LoraConfig(r=4, lora_alpha=8, target_modules=["c_fc"]))
    with torch.no_grad():
        for name, param in adapted.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.1)
    adapted.save_pretrained(folder)


def test_a_peft_adapter_whose_names_match_no_module_is_refused(tmp_path, clip_file):
    import warnings

    from safetensors.torch import load_file, save_file

    from overspec.errors import ModelError
    from overspec.models import load_model

    adapter = tmp_path / "adapter"
    _trained_adapter(adapter)
    weights = adapter / "adapter_model.safetensors"
    tensors = load_file(weights)
    save_file({k.replace(".visual.", ".vision."): v for k, v in tensors.items()}, weights)  # a renamed prefix
    write_yaml(tmp_path / "base.yaml", {"family": "openai_clip", "weights": str(clip_file)})
    spec = write_yaml(tmp_path / "lora.yaml", {"family": "peft", "base": "base.yaml", "checkpoint": "adapter"})
    with warnings.catch_warnings(record=True) as caught, pytest.raises(ModelError) as raised:
        warnings.simplefilter("always")
        load_model(spec)
    renamed = sum(".visual." in k for k in tensors)
    assert renamed and str(raised.value) == (
        f"lora: adapter {adapter} does not apply to base base: {renamed} of its {len(tensors)} tensors match "
        "no module: base_model.model.vision.transformer.resblocks.N.mlp.c_fc.lora_A.weight (x2), "
        "base_model.model.vision.transformer.resblocks.N.mlp.c_fc.lora_B.weight (x2); "
        f"{renamed} LoRA tensors of the base get no value: "
        "base_model.model.visual.transformer.resblocks.N.mlp.c_fc.lora_A.weight (x2), "
        "base_model.model.visual.transformer.resblocks.N.mlp.c_fc.lora_B.weight (x2); it was saved from another "
        "model or its tensor names were changed: export it again from the model it was trained on"
    )
    assert not [w for w in caught if "adapter keys" in str(w.message)]  # the error, not also peft's warning


def test_finetuned_and_split_attention_checkpoints_with_renamed_tensors_are_refused(tmp_path, clip_file):
    import torch

    from helpers.models import tiny_clip, to_split_lora_format
    from overspec.errors import CheckpointError
    from overspec.models import load_model

    tuned = {k.replace("visual.", "vision."): v + 0.01 for k, v in tiny_clip().state_dict().items() if "visual." in k}
    torch.save(tuned, tmp_path / "tuned.pt")
    base = {"family": "openai_clip", "weights": str(clip_file)}
    with pytest.raises(CheckpointError, match=r"tuned.pt does not fit the model; \d+ unexpected keys: vision\."):
        load_model({"family": "finetuned", "base": base, "checkpoint": str(tmp_path / "tuned.pt")})

    state, _ = to_split_lora_format(tiny_clip(seed=7), 2, seed=8)
    renamed = {(k.replace("visual.", "vision.") if ".w_lora_" in k else k): v for k, v in state.items()}
    torch.save(renamed, tmp_path / "ck.pth")
    with pytest.raises(CheckpointError) as raised:
        load_model({"family": "froundation", "checkpoint": str(tmp_path / "ck.pth"), "lora": {"r": 2, "alpha": 4}})
    assert str(raised.value) == (
        f"froundation:ck.pth checkpoint {tmp_path / 'ck.pth'}: 8 LoRA tensors match no attention layer of the "
        "model: vision.transformer.resblocks.N.attn.q_proj.w_lora_A (x2), "
        "vision.transformer.resblocks.N.attn.q_proj.w_lora_B (x2), vision.transformer.resblocks.N.attn.v_proj.w_lora_A "
        "(x2), vision.transformer.resblocks.N.attn.v_proj.w_lora_B (x2); their names were changed or they belong to "
        "another model: export the checkpoint again from the model it was trained on"
    )


# --- nothing waits forever ---


def test_a_hub_that_accepts_and_never_answers_ends_in_bounded_time(tmp_path):
    """A listener that completes the TCP handshake and never writes a byte: each request times out after
    OVERSPEC_HUB_TIMEOUT seconds and is tried once more (after huggingface_hub's 1 s wait); then one line."""
    import os
    import socket
    import threading
    import time

    held, stop = [], threading.Event()
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        server.settimeout(0.2)

        def hold():
            while not stop.is_set():
                try:
                    held.append(server.accept()[0])  # read nothing, answer nothing
                except TimeoutError:
                    pass

        thread = threading.Thread(target=hold, daemon=True)
        thread.start()
        port = server.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
        env |= {"HF_ENDPOINT": f"http://127.0.0.1:{port}", "OVERSPEC_HUB_TIMEOUT": "0.5", "HF_HOME": str(tmp_path)}
        start = time.monotonic()
        result = overspec("fetch", "svhn", "--root", str(tmp_path / "data"), env=env, timeout=60)
        seconds = time.monotonic() - start
        stop.set()
        thread.join()
    for connection in held:
        connection.close()
    assert seconds < 15, f"took {seconds:.1f} s"
    line = _one_error_line(result)
    assert line == (
        f"error: listing http://127.0.0.1:{port}/datasets/clip-benchmark/wds_vtab-svhn failed: http://127.0.0.1:{port} "
        "did not answer GET /api/datasets/clip-benchmark/wds_vtab-svhn/tree/main within 0.5 s, 2 times; check the "
        "network or HF_ENDPOINT, or allow more seconds with OVERSPEC_HUB_TIMEOUT"
    )
    assert not (tmp_path / "data").exists()

"""Messages go through stdlib logging: -q/--quiet leaves warnings and errors only (no info lines, no progress bars),
-v/--verbose adds debug lines (tests/test_provenance.py), on every command and before or after the command name; the
probe's fits have a progress bar."""

from __future__ import annotations

import io
import logging

import numpy as np
import pytest
from typer.testing import CliRunner

from helpers.cli import write_yaml
from overspec.cli import app


def invoke(*args: str):
    done = CliRunner().invoke(app, list(args))
    assert done.exit_code == 0, done.output
    return done


@pytest.fixture(scope="module")
def clip_spec(tmp_path_factory, clip_file):
    return write_yaml(
        tmp_path_factory.mktemp("spec") / "clip.yaml", {"family": "openai_clip", "weights": str(clip_file)}
    )


def test_quiet_silences_info_and_progress_and_is_taken_anywhere_on_the_line(clip_spec, face_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("OVERSPEC_CACHE_WRITE", "1")  # restored after the test: embed --no-cache sets it in-process
    args = ["embed", str(clip_spec), str(face_dir), "--workers", "0", "--no-cache"]
    said = invoke(*args, "--out", str(tmp_path / "a.npy")).stderr
    assert "embedding with" in said and "wrote 12 x" in said  # the progress bar, the info line
    for quiet in (["-q", *args], [*args, "--quiet"]):
        assert invoke(*quiet, "--out", str(tmp_path / "b.npy")).stderr == ""
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))
    assert "wrote 12 x" in invoke(*args, "--out", str(tmp_path / "c.npy")).stderr  # the next command line talks again


def test_quiet_keeps_warnings_and_quiet_with_verbose_is_refused(tmp_path):
    mixed = (
        "model,dataset,protocol,value\nclip,a,zeroshot,0.8\nclip,b,zeroshot,0.6\nft,a,zeroshot,75\nft,b,zeroshot,0.5\n"
    )
    (tmp_path / "mixed.csv").write_text(mixed)
    said = invoke("analyze", str(tmp_path / "mixed.csv"), "--baseline", "clip", "-q").stderr
    (line,) = said.splitlines()  # one plain line, whole, however long (no wrapping off a terminal)
    assert line.startswith("overspec: warning: ") and line.endswith("give every value in one unit, or GELO mixes them")
    refused = CliRunner().invoke(app, ["-q", "analyze", str(tmp_path / "mixed.csv"), "-v"])
    assert refused.exit_code == 2 and "--quiet and --verbose contradict each other" in refused.output


def test_a_warning_is_said_once_and_a_terminal_gets_richs_handler(monkeypatch):
    from rich.console import Console
    from rich.logging import RichHandler

    from overspec import _log

    terminal = Console(file=io.StringIO(), force_terminal=True, color_system=None, width=100)
    monkeypatch.setattr(_log, "console", lambda: terminal)
    handler = _log._handler()
    assert isinstance(handler, RichHandler)
    log = logging.getLogger("overspec.test_terminal")
    log.addHandler(handler)
    monkeypatch.setattr(log, "propagate", False)
    try:
        for _ in range(3):
            log.warning("the same [bracketed] thing")
    finally:
        log.removeHandler(handler)
    shown = terminal.file.getvalue()
    assert shown.count("the same [bracketed] thing") == 1 and "WARNING" in shown  # markup off: brackets kept


def test_the_probes_fits_are_counted_by_a_progress_bar(capsys):
    from overspec.protocols.linear_probe import probe

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 8)).astype(np.float32), np.arange(60) % 3
    _, details = probe(x, y, x, y, 3, progress=True)
    shown = capsys.readouterr().err
    fits = len(details["l2_path"]) + 1  # the path's fits, then the refit on train+val
    assert "lbfgs probe: fits" in shown and f" {fits} " in shown
    probe(x, y, x, y, 3, progress=False)
    assert capsys.readouterr().err == ""


def test_a_first_read_of_many_files_has_a_progress_bar(tmp_path, monkeypatch, capsys):
    import overspec._hashing as hashing

    files = []
    for i in range(5):
        files.append(tmp_path / f"{i}.bin")
        files[-1].write_bytes(bytes([i]) * 100)
    monkeypatch.setattr(hashing, "PROGRESS_FILES", 3)  # (2,000 files in earnest)
    first = hashing.content_digests(files)
    assert "reading files to fingerprint the data" in capsys.readouterr().err
    assert hashing.content_digests(files) == first and capsys.readouterr().err == ""  # remembered: nothing to read

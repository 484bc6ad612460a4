"""Data and config files read whole or refused: every case is real bytes on disk and one exact outcome (the
right number, or one error line naming the file with nothing written)."""

from __future__ import annotations

from helpers.cli import overspec


def _one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1, result.stderr
    return lines[0]


# --- YAML the user writes ---------------------------------------------------------------------------------------


def test_a_key_given_twice_in_a_config_is_one_line_naming_file_key_and_lines(tmp_path):
    config = tmp_path / "twice.yaml"
    config.write_text(
        "name: twice\nmodels: [clip-vit-b16.openai]\n"
        "general:\n  datasets: [cifar10]\n  protocols: [zeroshot]\n"
        "general:\n  datasets: [cifar10]\n  protocols: [linear_probe]\n"
    )
    assert _one_error_line(overspec("validate", str(config))) == (
        f"error: {config}: line 6: key 'general' appears twice in one mapping (first on line 3); "
        "YAML would keep only the last: merge the two into one"
    )


def test_a_key_given_twice_in_a_model_spec_is_refused_and_merge_keys_still_work(tmp_path):
    from overspec._validation import parse_yaml
    from overspec.errors import ConfigError
    from overspec.models.spec import load_spec_file

    spec = tmp_path / "spec.yaml"
    spec.write_text("family: open_clip\narch: ViT-B-16\nweights: a.pt\nweights: b.pt\n")
    try:
        load_spec_file(spec)
    except ConfigError as exc:
        assert str(exc) == (
            f"{spec}: line 4: key 'weights' appears twice in one mapping (first on line 3); "
            "YAML would keep only the last: merge the two into one"
        )
    else:
        raise AssertionError("a repeated key was accepted")
    # an explicit key overriding one merged in through `<<` is YAML's intent, not a repeat
    assert parse_yaml("a: &x {k: 1, j: 2}\nb:\n  <<: *x\n  k: 3\n", origin="m.yaml")["b"] == {"k": 3, "j": 2}


def test_a_config_that_is_not_utf8_is_one_line(tmp_path):
    config = tmp_path / "latin1.yaml"
    config.write_bytes("name: caf\u00e9\nmodels: [clip-vit-b16.openai]\n".encode("latin-1"))
    assert _one_error_line(overspec("validate", str(config))) == (
        f"error: {config}: not UTF-8 text (byte 0xe9 on line 1); save the file as UTF-8"
    )

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from overspec.errors import CheckpointError
from overspec.models.checkpoints import check_fit, load_state_dict, strip_wrapper_prefixes


def test_safetensors_and_weights_only_files(tmp_path):
    state = {"a.weight": torch.randn(3, 2), "b": torch.arange(4)}
    save_file(state, tmp_path / "w.safetensors")
    torch.save({"epoch": 3, "state_dict": state}, tmp_path / "w.pth")
    for name in ("w.safetensors", "w.pth"):
        loaded = load_state_dict(tmp_path / name)
        assert loaded.keys() == state.keys()
        assert all(torch.equal(loaded[k], state[k]) for k in state)


class Payload:
    def __reduce__(self):
        return (print, ("this would run on load",))


def test_files_needing_arbitrary_unpickling_are_refused(tmp_path):
    torch.save({"weight": torch.zeros(1), "extra": Payload()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match=r"refusing checkpoint .*evil.pth: loading it needs arbitrary unpickling"):
        load_state_dict(tmp_path / "evil.pth")
    torch.save(torch.nn.Linear(2, 2), tmp_path / "whole_model.pth")  # a pickled module object, not a state dict
    with pytest.raises(CheckpointError, match="refusing .* Python object torch.nn.modules.linear.Linear"):
        load_state_dict(tmp_path / "whole_model.pth")


def test_whole_model_objects_and_garbage_get_clear_errors(tmp_path):
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pth is not a readable PyTorch file"):
        load_state_dict(tmp_path / "junk.pth")
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="holds a list, not a state dict"):
        load_state_dict(tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_state_dict(tmp_path / "absent.pth")


def test_torchscript_archives_give_their_state_dict(tmp_path):
    module = torch.jit.script(torch.nn.Linear(3, 2))
    module.save(str(tmp_path / "jit.pt"))
    loaded = load_state_dict(tmp_path / "jit.pt")
    assert set(loaded) == {"weight", "bias"} and torch.equal(loaded["weight"], module.weight)


def test_wrapper_prefixes_are_stripped():
    state = {"module.backbone.x": torch.zeros(1), "module.backbone.y": torch.zeros(1)}
    assert set(strip_wrapper_prefixes(state)) == {"x", "y"}


def test_key_mismatch_names_missing_unexpected_and_cause():
    expected = {f"blocks.{i}.w": torch.zeros(2) for i in range(4)} | {"head.w": torch.zeros(2)}
    got = {f"encoder.blocks.{i}.w": torch.zeros(2) for i in range(4)} | {"encoder.head.w": torch.zeros(2)}
    with pytest.raises(CheckpointError) as info:
        check_fit(expected, got, source="f.pth")
    message = str(info.value)
    assert "5 missing keys: blocks.N.w (x4), head.w" in message
    assert "5 unexpected keys: encoder.blocks.N.w (x4), encoder.head.w" in message
    assert "likely cause: every key carries an extra prefix 'encoder.'" in message
    with pytest.raises(CheckpointError, match=r"model \(2,\), file \(3,\).*another architecture size"):
        check_fit({"a": torch.zeros(2)}, {"a": torch.zeros(3)}, source="f.pth")
    check_fit(expected, dict(expected), source="f.pth")  # a fit raises nothing

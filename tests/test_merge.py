"""Merged models (family merge): task arithmetic, TIES and DARE against independent transcriptions of their
papers' algorithms, and on real (tiny) models loaded from disk, LoRA and full fine-tunes alike."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from helpers.cli import write_yaml
from helpers.models import tiny_clip
from overspec.errors import OverspecError
from overspec.models import load_model
from overspec.models.merge import merge_states

SHAPES = {"a": (3, 4), "b": (5,), "c": (2, 2, 2)}


def random_states(n: int, seed: int = 0) -> tuple[dict, list[dict]]:
    gen = torch.Generator().manual_seed(seed)
    base = {k: torch.randn(s, generator=gen) for k, s in SHAPES.items()}
    base["count"] = torch.tensor(7)  # an integer buffer: the base's is kept
    tuned = []
    for i in range(n):
        state = {k: v + torch.randn(v.shape, generator=gen) * (i + 1) for k, v in base.items() if k != "count"}
        tuned.append({**state, "count": torch.tensor(9)})
    return base, tuned


def flat(state: dict) -> np.ndarray:
    return np.concatenate([state[k].double().numpy().ravel() for k in SHAPES])


def unflat(vector: np.ndarray) -> dict:
    out, start = {}, 0
    for k, s in SHAPES.items():
        n = int(np.prod(s))
        out[k] = vector[start : start + n].reshape(s)
        start += n
    return out


def check(merged: dict, expected_vector: np.ndarray, base: dict) -> None:
    expected = unflat(expected_vector)
    for k in SHAPES:
        np.testing.assert_allclose(merged[k].numpy(), expected[k], rtol=1e-6, atol=1e-6)
        assert merged[k].dtype == torch.float32
    assert merged["count"].item() == 7


def test_task_arithmetic_is_base_plus_lambda_times_weighted_task_vectors():
    base, tuned = random_states(3)
    weights, lam = [0.5, -0.25, 1.5], 0.7
    merged = merge_states(base, tuned, weights, method="task_arithmetic", scale=lam)
    theta0 = flat(base)
    # Ilharco et al. 2023, eq. 1: θ_new = θ_0 + λ Σ_i τ_i, τ_i = θ_i − θ_0 (here each τ_i weighted)
    check(merged, theta0 + lam * sum(w * (flat(t) - theta0) for w, t in zip(weights, tuned, strict=True)), base)


# ---- TIES: the reference code (prateeky2806/ties-merging, src/utils/merge_utils.py), transcribed ----------------


def topk_values_mask(M: torch.Tensor, K: float) -> torch.Tensor:
    if M.dim() == 1:
        M = M.unsqueeze(0)
    _, d = M.shape
    k = int(d * K)
    k = d - k  # keep the top k elements instead of the bottom k
    kth_values, _ = M.abs().kthvalue(k, dim=1, keepdim=True)
    mask = M.abs() >= kth_values
    return M * mask


def resolve_zero_signs(sign_to_mult: torch.Tensor, method: str = "majority") -> torch.Tensor:
    majority_sign = torch.sign(sign_to_mult.sum())
    if method == "majority":
        sign_to_mult[sign_to_mult == 0] = majority_sign
    return sign_to_mult


def resolve_sign(Tensor: torch.Tensor) -> torch.Tensor:  # resolve_method "mass"
    sign_to_mult = torch.sign(Tensor.sum(dim=0))
    return resolve_zero_signs(sign_to_mult, "majority")


def disjoint_merge(Tensor: torch.Tensor, sign_to_mult: torch.Tensor) -> torch.Tensor:  # merge_func "dis-mean"
    rows_to_keep = torch.where(sign_to_mult.unsqueeze(0) > 0, Tensor > 0, Tensor < 0)
    selected_entries = Tensor * rows_to_keep
    non_zero_counts = (selected_entries != 0).sum(dim=0).float()
    return torch.sum(selected_entries, dim=0) / torch.clamp(non_zero_counts, min=1)


def ties_reference(theta0: np.ndarray, thetas: list[np.ndarray], k: float, lam: float) -> np.ndarray:
    """The reference's merge_methods("topk", reset_thresh=k, resolve_method="mass", merge_func="dis-mean"), each
    task vector's trim ranked over the tensors it changed (of ``SHAPES``, in flat order) as overspec documents."""
    trimmed = []
    for theta in thetas:
        tau = torch.from_numpy(theta - theta0)
        changed = torch.zeros(len(tau), dtype=torch.bool)
        for part in unflat(np.arange(len(tau))).values():
            if (tau[part.ravel()] != 0).any():
                changed[part.ravel()] = True
        row = tau.clone()
        if k < 1:  # density 1: no trim (the reference's kthvalue(0) would fail)
            row[changed] = topk_values_mask(tau[changed], k)[0]
        trimmed.append(row)
    stacked = torch.stack(trimmed)
    merged = disjoint_merge(stacked, resolve_sign(stacked))
    return theta0 + lam * merged.numpy()


@pytest.mark.parametrize("density", [0.2, 0.5, 1.0])
@pytest.mark.parametrize("unchanged", [None, "c"])
def test_ties_equals_the_reference_code(density, unchanged):
    base, tuned = random_states(3, seed=1)
    if unchanged:  # one model leaves a tensor as the base's: it neither counts in nor dilutes that model's trim
        tuned[0][unchanged] = base[unchanged].clone()
    merged = merge_states(base, tuned, [1.0, 1.0, 1.0], method="ties", density=density, scale=0.9)
    check(merged, ties_reference(flat(base), [flat(t) for t in tuned], density, 0.9), base)


def test_ties_trim_keeps_the_reference_count_and_a_zero_sum_takes_the_majority_sign():
    # magnitudes 1..10, distinct: the reference keeps int(0.2 · 10) + 1 = 3 entries (the 8, 9, 10)
    base = {"a": torch.zeros(10)}
    one = {"a": torch.arange(1.0, 11.0) * torch.tensor([1.0, -1.0] * 5)}
    kept = merge_states(base, [one], [1.0], method="ties", density=0.2)["a"]
    assert torch.equal(kept, torch.where(torch.arange(10) >= 7, one["a"], 0.0))
    assert torch.equal(merge_states(base, [one], [1.0], method="ties", density=1.0)["a"], one["a"])
    # entry 0: +4 and −4 cancel exactly; the elected signs of the others sum to +: the majority sign + wins
    two = {"a": torch.tensor([4.0, 1.0, 2.0, 0.5, 0.0])}, {"a": torch.tensor([-4.0, 3.0, -1.0, 0.0, 0.25])}
    zero_sum = merge_states({"a": torch.zeros(5)}, list(two), [1.0, 1.0], method="ties", density=1.0)["a"]
    assert zero_sum[0] == 4.0
    theta0 = np.zeros(5)
    np.testing.assert_array_equal(zero_sum.numpy(), ties_reference_flat(theta0, [t["a"] for t in two]))


def ties_reference_flat(theta0: np.ndarray, thetas: list[torch.Tensor]) -> np.ndarray:
    stacked = torch.stack([t.double() - torch.from_numpy(theta0) for t in thetas])
    return (torch.from_numpy(theta0) + disjoint_merge(stacked, resolve_sign(stacked))).float().numpy()


def test_ties_trim_ranks_only_the_tensors_a_model_changed():
    # a large tensor the model never touched (a frozen text tower) must not dilute the 20 % of the changed one
    gen = torch.Generator().manual_seed(0)
    base = {"text": torch.randn(4000, generator=gen), "visual": torch.randn(100, generator=gen)}
    tuned = {"text": base["text"].clone(), "visual": base["visual"] + torch.randn(100, generator=gen)}
    merged = merge_states(base, [tuned], [1.0], method="ties", density=0.2)
    assert int((merged["visual"] != base["visual"]).sum()) == int(0.2 * 100) + 1
    assert torch.equal(merged["text"], base["text"])


def test_dare_equals_drop_and_rescale_under_its_seed():
    base, tuned = random_states(2, seed=2)
    density, seed, weights = 0.3, 5, [1.0, 0.5]
    gen = torch.Generator().manual_seed(seed)  # the documented draw order: models, then tensors by name
    theta0, update = flat(base), np.zeros(len(flat(base)))
    dropped = []
    for w, t in zip(weights, tuned, strict=True):
        tau = unflat(flat(t) - theta0)
        kept = {k: torch.rand(SHAPES[k], generator=gen).numpy() < density for k in sorted(SHAPES)}
        # Yu et al. 2024, eq. 2: m ~ Bernoulli(p), τ̃ = (1 − m) ⊙ τ / (1 − p), p = 1 − density
        rescaled = np.concatenate([np.where(kept[k], tau[k], 0.0).ravel() / density for k in SHAPES])
        dropped.append(rescaled)
        update += w * rescaled
    merged = merge_states(base, tuned, weights, method="dare", density=density, seed=seed)
    check(merged, theta0 + update, base)
    again = merge_states(base, tuned, weights, method="dare", density=density, seed=seed)
    assert all(torch.equal(again[k], merged[k]) for k in SHAPES)
    other = merge_states(base, tuned, weights, method="dare", density=density, seed=seed + 1)
    assert not torch.equal(other["a"], merged["a"])
    # DARE then TIES' sign election and disjoint mean (no second trim)
    with_ties = merge_states(base, tuned, weights, method="dare", density=density, seed=seed, combine="ties")
    weighted = [theta0 + w * d for w, d in zip(weights, dropped, strict=True)]
    check(with_ties, ties_reference(theta0, weighted, 1.0, 1.0), base)


@pytest.mark.parametrize("method", ["task_arithmetic", "ties", "dare"])
def test_one_model_at_weight_one_is_that_model_and_at_weight_zero_the_base(method):
    base, (tuned,) = random_states(1, seed=3)
    tuned["a"][0, 0] = base["a"][0, 0] * 1e-7  # far apart in magnitude: still exact in float64
    one = merge_states(base, [tuned], [1.0], method=method, density=1.0)
    zero = merge_states(base, [tuned], [0.0], method=method, density=0.5)
    for k in SHAPES:
        assert torch.equal(one[k], tuned[k]) and torch.equal(zero[k], base[k])


# ---- BatchNorm: buffers are statistics, not task vectors --------------------------------------------------


def tiny_cnn(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU())


def bn_states(n: int) -> tuple[torch.nn.Module, dict, list[dict]]:
    """A base CNN and n fine-tunes whose BatchNorm statistics were re-estimated on a narrower domain (variances
    0.3-0.6 of the base's: summed as task vectors, three of them drive the variance negative)."""
    net = tiny_cnn(0)
    gen = torch.Generator().manual_seed(1)
    base = {k: v.clone() for k, v in net.state_dict().items()}
    base["1.running_mean"], base["1.running_var"] = torch.randn(4, generator=gen), torch.rand(4, generator=gen) + 0.5
    tuned = []
    for i in range(n):
        state = {k: v + torch.randn(v.shape, generator=gen) * 0.1 for k, v in base.items() if v.is_floating_point()}
        state["1.running_var"] = base["1.running_var"] * (0.3 + 0.1 * i)
        tuned.append({**state, "1.num_batches_tracked": torch.tensor(500 + i)})
    return net, base, tuned


def test_batchnorm_buffers_are_a_convex_mix_never_a_task_vector():
    net, base, tuned = bn_states(3)
    parameters = {n for n, _ in net.named_parameters()}
    buffers = ["1.running_mean", "1.running_var"]
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    for weights, lam in [([1.0, 1.0, 1.0], 1.0), ([0.3, 0.2, -1.0], 0.5), ([2.0, 1.0, 0.5], 1.5)]:
        for method, settings in [("task_arithmetic", {}), ("dare", {"density": 0.1, "seed": 3})]:
            merged = merge_states(base, tuned, weights, method=method, scale=lam, parameters=parameters, **settings)
            # by hand: ŵ_i = max(w_i, 0) / max(1, Σ max(w_j, 0)), s = clamp(λ, 0, 1)
            positive = np.maximum(weights, 0.0)
            mix, s = positive / max(1.0, positive.sum()), min(max(lam, 0.0), 1.0)
            for name in buffers:
                b0 = base[name].double().numpy()
                expected = b0 + s * sum(m * (t[name].double().numpy() - b0) for m, t in zip(mix, tuned, strict=True))
                np.testing.assert_allclose(merged[name].numpy(), expected, rtol=1e-6)
            assert (merged["1.running_var"] > 0).all() and merged["1.num_batches_tracked"].item() == 0
            if method == "task_arithmetic":  # parameters: θ0 + λ Σ w_i τ_i, as ever
                for name in parameters:
                    b0 = base[name].double().numpy()
                    tau = sum(w * (t[name].double().numpy() - b0) for w, t in zip(weights, tuned, strict=True))
                    np.testing.assert_allclose(merged[name].numpy(), b0 + lam * tau, rtol=1e-5, atol=1e-6)
            net.load_state_dict(merged)
            assert torch.isfinite(net.eval()(x)).all()


@pytest.mark.parametrize("method", ["task_arithmetic", "ties", "dare"])
def test_batchnorm_model_at_weight_one_is_that_model_and_at_zero_the_base(method):
    net, base, (tuned,) = bn_states(1)
    parameters = {n for n, _ in net.named_parameters()}
    one = merge_states(base, [tuned], [1.0], method=method, density=1.0, parameters=parameters)
    zero = merge_states(base, [tuned], [0.0], method=method, density=0.5, parameters=parameters)
    for name, value in base.items():
        assert torch.equal(zero[name], value)
        assert torch.equal(one[name], value if name.endswith("num_batches_tracked") else tuned[name])


# ---- real models on disk ----------------------------------------------------------------------------------


def full_finetune(folder, name: str, seed: int) -> str:
    """A 'finetuned' spec: the tiny CLIP's image tower moved by noise, saved as overspec finetune saves it."""
    gen = torch.Generator().manual_seed(seed)
    state = {k: v + torch.randn(v.shape, generator=gen) * 0.01 for k, v in tiny_clip().state_dict().items()}
    tower = {k: v.contiguous() for k, v in state.items() if k.startswith("visual.")}
    save_file(tower, str(folder / f"{name}.safetensors"))
    spec = {"family": "finetuned", "base": "clip.yaml", "checkpoint": f"{name}.safetensors"}
    return str(write_yaml(folder / f"{name}.yaml", spec))


def lora_finetune(folder, name: str) -> str:
    """A peft LoRA adapter on the tiny CLIP's attention (split q/k/v), with non-zero B, and a binary head."""
    from overspec.finetune.adapters import add_lora
    from overspec.finetune.config import LoraConfig

    encoder = load_model(folder / "clip.yaml")
    model = add_lora(encoder, LoraConfig(r=2, alpha=4), [])
    with torch.no_grad():
        for param_name, param in model.named_parameters():
            if "lora_B" in param_name:
                param.copy_(torch.randn(param.shape, generator=torch.Generator().manual_seed(4)) * 0.05)
    model.save_pretrained(str(folder / name))
    head = {"linear.weight": torch.randn(2, 32), "linear.bias": torch.zeros(2)}
    save_file(head, str(folder / f"{name}_head.safetensors"))
    spec = {
        "family": "peft",
        "base": "clip.yaml",
        "checkpoint": name,
        "adapter_layout": "split_attention",
        "head": f"{name}_head.safetensors",
    }
    return str(write_yaml(folder / f"{name}.yaml", spec))


def states(model) -> dict:
    return load_model(model).module.state_dict()


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_one_real_model_at_weight_one_is_that_model_and_at_zero_the_base(tmp_path):
    torch.save(tiny_clip().state_dict(), tmp_path / "clip.pt")
    base = str(write_yaml(tmp_path / "clip.yaml", {"family": "openai_clip", "weights": "clip.pt"}))
    fr = full_finetune(tmp_path, "fr", 1)

    def merge(models, **settings):
        return {"family": "merge", "base": base, "models": models, "method": "task_arithmetic", **settings}

    # one full fine-tune at weight 1 is that model, bit for bit; at weight 0 the base, with the base's fingerprint
    assert same(states(merge([{"model": fr}])), states(fr))
    at_zero = load_model(merge([{"model": fr, "weight": 0.0}]))
    assert same(at_zero.module.state_dict(), states(base))
    assert at_zero.fingerprint == load_model(base).fingerprint


@pytest.mark.slow
def test_merging_lora_and_full_finetunes_keeps_heads_and_layouts(tmp_path):
    torch.save(tiny_clip().state_dict(), tmp_path / "clip.pt")
    base = str(write_yaml(tmp_path / "clip.yaml", {"family": "openai_clip", "weights": "clip.pt"}))
    fr, mad = full_finetune(tmp_path, "fr", 1), lora_finetune(tmp_path, "mad")

    def merge(models, **settings):
        return {"family": "merge", "base": base, "models": models, "method": "task_arithmetic", **settings}

    # the LoRA model splits attention into q/k/v: the merge is that model, and keeps its head under its task
    lora = load_model(merge([{"model": mad, "task": "mad"}], method="ties", density=1.0))
    reference = load_model(mad)
    assert same(lora.module.state_dict(), reference.module.state_dict())
    assert set(lora.heads) == {"mad"} and lora.head_for("mad") is not None
    assert torch.equal(lora.heads["mad"].module[1].weight, reference.head.module[1].weight)

    # two models: θ0 + 0.5·(0.6 τ_fr + 1.0 τ_mad), whatever their layouts
    both = load_model(merge([{"model": fr, "weight": 0.6}, {"model": mad, "weight": 1.0}], adapter_scale=0.5))
    from overspec.models.split_attention import split_attention

    expected = {}
    zero, one, two = (load_model(m).module for m in (base, fr, mad))
    split_attention(zero), split_attention(one)
    for k, v in zero.state_dict().items():
        if v.is_floating_point():
            tau = 0.6 * (one.state_dict()[k].double() - v.double()) + (two.state_dict()[k].double() - v.double())
            expected[k] = (v.double() + 0.5 * tau).float()
    got = both.module.state_dict()
    assert all(torch.equal(got[k], v) for k, v in expected.items())
    fingerprints = {both.fingerprint, lora.fingerprint, load_model(base).fingerprint, reference.fingerprint}
    assert len(fingerprints) == 4


def test_heads_come_from_weighted_models_and_one_per_task(tmp_path):
    from overspec.errors import ModelError

    torch.save(tiny_clip().state_dict(), tmp_path / "clip.pt")
    base = str(write_yaml(tmp_path / "clip.yaml", {"family": "openai_clip", "weights": "clip.pt"}))
    mad, pad = lora_finetune(tmp_path, "mad"), lora_finetune(tmp_path, "pad")

    def merge(models):
        return {"family": "merge", "base": base, "models": models, "method": "task_arithmetic"}

    # a model at weight 0 is left out, its head too: the MAD head is mad's, not pad's
    kept = load_model(merge([{"model": mad, "task": "mad"}, {"model": pad, "weight": 0.0, "task": "mad"}]))
    mad_head = load_file(str(tmp_path / "mad_head.safetensors"))["linear.weight"]
    assert set(kept.heads) == {"mad"} and torch.equal(kept.heads["mad"].module[1].weight, mad_head)
    # two heads for one task: a one-line error naming both and the fix (`task: general` on one drops its head)
    with pytest.raises(ModelError, match=r"models mad and pad both give a mad head; set `task: general`") as error:
        load_model(merge([{"model": mad, "task": "mad"}, {"model": pad, "task": "mad"}]))
    assert "\n" not in str(error.value)


def test_merge_spec_errors(tmp_path):
    torch.save(tiny_clip().state_dict(), tmp_path / "clip.pt")
    base = str(write_yaml(tmp_path / "clip.yaml", {"family": "openai_clip", "weights": "clip.pt"}))
    with pytest.raises(OverspecError, match="family merge needs `base`, `models`"):
        load_model({"family": "merge", "base": base, "method": "ties"})
    with pytest.raises(OverspecError, match="keys of family merge only"):
        load_model({"family": "openai_clip", "weights": base, "density": 0.5})
    with pytest.raises(OverspecError, match="density"):
        load_model({"family": "merge", "base": base, "models": [{"model": base}], "method": "ties", "density": 0})


def merge_spec_file(tmp_path):
    """merged.yaml: a TIES merge of one full FR fine-tune (fr.yaml) into a tiny CLIP (clip.yaml), relative paths."""
    torch.save(tiny_clip().state_dict(), tmp_path / "clip.pt")
    write_yaml(tmp_path / "clip.yaml", {"family": "openai_clip", "weights": "clip.pt"})
    full_finetune(tmp_path, "fr", 1)
    spec = {"family": "merge", "base": "clip.yaml", "models": [{"model": "fr.yaml", "weight": 0.5}], "method": "ties"}
    path = write_yaml(tmp_path / "merged.yaml", spec)
    return path


def test_merge_spec_file_resolves_member_paths_and_fingerprints_them(tmp_path):
    from overspec.models.identity import spec_fingerprint

    path = merge_spec_file(tmp_path)
    first = spec_fingerprint(path)
    assert load_model(path).name == "merged"
    full_finetune(tmp_path, "fr", 2)  # other weights in the member's file: another merged model
    assert spec_fingerprint(path) != first


def test_new_merge_rules_re_key_the_merged_models_cells(tmp_path, monkeypatch):
    """Cells are keyed at plan time by the spec's fingerprint: results merged under older rules are not reused."""
    import overspec.models.merge as merge
    from overspec.models.identity import spec_fingerprint

    path = merge_spec_file(tmp_path)
    now = spec_fingerprint(path)
    monkeypatch.setattr(merge, "RULES", merge.RULES - 1)
    assert spec_fingerprint(path) != now

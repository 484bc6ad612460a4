"""Merged models (family merge): task arithmetic, TIES and DARE against independent transcriptions of their
papers' algorithms, and on real (tiny) models loaded from disk, LoRA and full fine-tunes alike."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

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


def ties_reference(theta0: np.ndarray, thetas: list[np.ndarray], k: float, lam: float) -> np.ndarray:
    """Yadav et al. 2023, Algorithm 1, element by element."""
    taus = [t - theta0 for t in thetas]
    trimmed = []
    for tau in taus:  # step 1: keep the top-k% magnitudes of each task vector
        keep = max(1, round(k * len(tau)))
        threshold = sorted(abs(tau), reverse=True)[keep - 1]
        trimmed.append(np.array([v if abs(v) >= threshold else 0.0 for v in tau]))
    total = sum(trimmed)  # step 2: elect the sign with the greater total mass
    gamma = np.sign(total)
    majority = np.sign(np.sign(total).sum())
    gamma[gamma == 0] = majority
    merged = np.zeros_like(theta0)
    for p in range(len(theta0)):  # step 3: disjoint mean over the entries that agree with the elected sign
        agreeing = [t[p] for t in trimmed if t[p] != 0 and np.sign(t[p]) == gamma[p]]
        merged[p] = sum(agreeing) / len(agreeing) if agreeing else 0.0
    return theta0 + lam * merged


@pytest.mark.parametrize("density", [0.2, 0.5, 1.0])
def test_ties_equals_the_papers_algorithm(density):
    base, tuned = random_states(3, seed=1)
    merged = merge_states(base, tuned, [1.0, 1.0, 1.0], method="ties", density=density, scale=0.9)
    check(merged, ties_reference(flat(base), [flat(t) for t in tuned], density, 0.9), base)


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


def test_merge_spec_errors(tmp_path):
    torch.save(tiny_clip().state_dict(), tmp_path / "clip.pt")
    base = str(write_yaml(tmp_path / "clip.yaml", {"family": "openai_clip", "weights": "clip.pt"}))
    with pytest.raises(OverspecError, match="family merge needs `base`, `models`"):
        load_model({"family": "merge", "base": base, "method": "ties"})
    with pytest.raises(OverspecError, match="keys of family merge only"):
        load_model({"family": "openai_clip", "weights": base, "density": 0.5})
    with pytest.raises(OverspecError, match="density"):
        load_model({"family": "merge", "base": base, "models": [{"model": base}], "method": "ties", "density": 0})


def test_merge_spec_file_resolves_member_paths_and_fingerprints_them(tmp_path):
    from overspec.models.identity import spec_fingerprint

    torch.save(tiny_clip().state_dict(), tmp_path / "clip.pt")
    write_yaml(tmp_path / "clip.yaml", {"family": "openai_clip", "weights": "clip.pt"})
    full_finetune(tmp_path, "fr", 1)
    spec = {"family": "merge", "base": "clip.yaml", "models": [{"model": "fr.yaml", "weight": 0.5}], "method": "ties"}
    path = write_yaml(tmp_path / "merged.yaml", spec)
    first = spec_fingerprint(path)
    assert load_model(path).name == "merged"
    full_finetune(tmp_path, "fr", 2)  # other weights in the member's file: another merged model
    assert spec_fingerprint(path) != first

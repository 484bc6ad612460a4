"""Merged models (family ``merge``): one base and several models fine-tuned from it, combined in weight space.

Each fine-tuned model i gives a task vector τ_i = θ_i − θ_base over the module's *parameters* (the names of
``module.named_parameters``), weighted by its ``weight`` w_i; the merged parameters are θ_base + λ·τ_m with
λ the spec's ``adapter_scale`` (so a sweep scales the merge like any other update) and τ_m by ``method``:

- ``task_arithmetic`` (Ilharco et al., ICLR 2023, "Editing models with task arithmetic"): τ_m = Σ w_i τ_i.
- ``ties`` (Yadav et al., NeurIPS 2023, "TIES-Merging"): trim each w_i τ_i as the reference code's
  ``topk_values_mask`` counts (n entries, k = int(density·n), keep the magnitudes >= the (n − k)-th smallest:
  int(density·n) + 1 entries when distinct; density 1 keeps all), ranked only over the tensors that model
  changed (not equal to the base's: a frozen text tower or layers a LoRA never touched do not dilute the
  trim), elect each entry's sign as the sign of the trimmed vectors' sum (a zero sum takes the sign of the sum
  of all elected signs, the reference's "majority"), and average the trimmed entries that agree with it
  (disjoint mean: their sum over their count, zeros not counted).
- ``dare`` (Yu et al., ICML 2024, "Language models are Super Mario"): drop each entry of τ_i with probability
  1 − ``density`` and rescale the kept ones by 1/``density`` (masks drawn from ``torch.Generator`` seeded with
  ``seed``: models in spec order, tensors in name order, one ``torch.rand`` per tensor, kept where < density),
  then ``combine`` by task arithmetic or by TIES's sign election and disjoint mean of the weighted dropped
  vectors (no second trim). That is *not* mergekit's ``dare_ties``: mergekit drops per tensor (its own random
  stream), gives a zero sum the + sign (ours: the majority over the whole vector) and divides the agreeing weighted
  entries by the sum of their models' weights (ours: by their count); the two agree only at weights 1 with no
  zero sums.

Floating-point *buffers* (BatchNorm running statistics) are not task vectors: never trimmed, dropped or summed,
they are a convex combination of the base's and the models' statistics, b_base + s·Σ ŵ_i (b_i − b_base) with
ŵ_i = max(w_i, 0) / max(1, Σ_j max(w_j, 0)) and s = clamp(λ, 0, 1) (a variance stays positive); integer
buffers (``num_batches_tracked``) stay the base's.

Arithmetic runs in float64 and is cast back, so weight 1 on one model (λ = 1, density 1) gives that model bit
for bit, buffers too, and weight 0 the base (θ_b + (θ_t − θ_b) is exact in float64 whenever the two float32
values are within 2^28 of each other in magnitude, or one is zero). Heads stay with their task: every member
with a non-zero weight brings its native head under its task (``task`` of the member, else its family's; a
member at weight 0 brings none), the MAD/PAD protocols use the head of their own task, and two heads for one
task are an error (``task: general`` on one drops its head). The merge runs tensor by tensor (TIES' per-model
thresholds and majority sign first), so only one tensor's float64 copies are alive at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator

import torch

from overspec._hashing import digest
from overspec.errors import ModelError
from overspec.models.encoder import Encoder
from overspec.models.spec import ModelSpec
from overspec.registry import Registry

RULES = 2  # the merge's rules (2: buffers mixed, TIES' reference count over changed tensors): new rules, new weights
DEFAULT_DENSITY = {"ties": 0.2, "dare": 0.1}  # TIES' k = 20 % (its paper's default); DARE's drop rate p = 0.9

Updates = Iterator[tuple[str, torch.Tensor]]  # τ_m, one tensor at a time: (name, float64 update)


class TaskVectors:
    """The models' task vectors τ_i = θ_i − θ_base in float64, made one tensor at a time when asked: held all at
    once, three ViT-L/14 CLIPs' (427.6 M parameters each) would take 3 × 3.4 GB, and TIES' copies three times that."""

    def __init__(self, base: dict[str, torch.Tensor], tuned: list[dict[str, torch.Tensor]], names: list[str]):
        self.base, self.tuned, self.names = base, tuned, sorted(names)

    def of(self, i: int, name: str) -> torch.Tensor:
        return self.tuned[i][name].double() - self.base[name].double()

    def at(self, name: str, weights: list[float]) -> list[torch.Tensor]:
        """w_i τ_i of every model, for one tensor."""
        return [w * self.of(i, name) for i, w in enumerate(weights)]


def trim_threshold(vectors: TaskVectors, i: int, weight: float, density: float) -> torch.Tensor | None:
    """TIES' trim of model i as the reference code's ``topk_values_mask`` counts it, over the n entries of the
    tensors this model changed (a tensor with a non-zero entry; unchanged ones, all zero, neither count nor dilute
    the rank): k = int(density · n), threshold = the (n − k)-th smallest magnitude, keep magnitudes ``>=`` it
    (k + 1 entries when distinct, more at ties). None (keep everything) at density 1."""
    if density >= 1:
        return None
    changed = [name for name in vectors.names if bool(vectors.of(i, name).any())]
    n = sum(vectors.base[name].numel() for name in changed)
    if not n:
        return None
    flat = torch.empty(n, dtype=torch.float64)  # one float64 copy of the magnitudes, filled tensor by tensor
    start = 0
    for name in changed:
        part = (weight * vectors.of(i, name)).abs().flatten()
        flat[start : start + part.numel()] = part
        start += part.numel()
    return torch.kthvalue(flat, max(1, n - int(density * n))).values


def elect_and_average(entries: Callable[[], Iterator[tuple[str, list[torch.Tensor]]]]) -> Updates:
    """TIES' sign election and disjoint mean over the models' (already trimmed) entries, which ``entries()`` gives
    tensor by tensor, twice: first for the majority sign of zero sums (over every tensor), then to merge."""
    majority = torch.sign(sum(torch.sign(sum(models)).sum() for _, models in entries()))
    for name, models in entries():
        elected = torch.sign(sum(models))
        sign = torch.where(elected == 0, majority, elected)
        stacked = torch.stack(models)
        agree = torch.where(sign > 0, stacked > 0, stacked < 0)
        chosen = stacked * agree
        yield name, chosen.sum(0) / (chosen != 0).sum(0).clamp(min=1)


def task_arithmetic(vectors: TaskVectors, weights: list[float], **_) -> Updates:
    for name in vectors.names:
        yield name, sum(vectors.at(name, weights))


def ties(vectors: TaskVectors, weights: list[float], *, density: float, **_) -> Updates:
    thresholds = [trim_threshold(vectors, i, w, density) for i, w in enumerate(weights)]

    def trimmed() -> Iterator[tuple[str, list[torch.Tensor]]]:
        for name in vectors.names:
            models = zip(vectors.at(name, weights), thresholds, strict=True)
            yield name, [t if c is None else torch.where(t.abs() >= c, t, torch.zeros_like(t)) for t, c in models]

    return elect_and_average(trimmed)


def dare(
    vectors: TaskVectors, weights: list[float], *, density: float, seed: int, combine: str = "task_arithmetic", **_
) -> Updates:
    # the documented draw order is model by model; tensor by tensor, each model draws from its own generator,
    # started where the previous models' draws leave the seeded one (found by drawing them once, discarded)
    generator, states = torch.Generator().manual_seed(seed), []
    for i in range(len(weights)):
        states.append(generator.get_state())
        for name in vectors.names if i < len(weights) - 1 else ():
            torch.rand(vectors.base[name].shape, generator=generator)

    def dropped() -> Iterator[tuple[str, list[torch.Tensor]]]:
        generators = [torch.Generator().set_state(state) for state in states]
        for name in vectors.names:
            out = []
            for i, (w, g) in enumerate(zip(weights, generators, strict=True)):
                tau = vectors.of(i, name)
                keep = torch.rand(tau.shape, generator=g) < density
                out.append(w * torch.where(keep, tau / density, torch.zeros_like(tau)))
            yield name, out

    if combine == "ties":
        return elect_and_average(dropped)
    return ((name, sum(models)) for name, models in dropped())


METHODS: Registry[Callable[..., Updates]] = Registry("merge method")
METHODS.register("task_arithmetic", task_arithmetic)
METHODS.register("ties", ties)
METHODS.register("dare", dare)


def merge_states(
    base: dict[str, torch.Tensor],
    tuned: list[dict[str, torch.Tensor]],
    weights: list[float],
    *,
    method: str,
    scale: float = 1.0,
    density: float = 1.0,
    seed: int = 0,
    combine: str = "task_arithmetic",
    parameters: Collection[str] | None = None,
) -> dict[str, torch.Tensor]:
    """The merged state, in base's dtypes: θ_base + scale·τ_m for the floating-point ``parameters`` (None: every
    floating-point tensor of ``base``), the convex mix of ``buffer_mix`` for the other floating-point tensors
    (buffers: BatchNorm statistics), the base's for the rest (integer buffers)."""
    floating = [n for n, t in base.items() if t.is_floating_point()]
    names = [n for n in floating if parameters is None or n in parameters]
    merged = {}
    if names:  # tensor by tensor: one tensor's float64 copies at a time (TIES' thresholds first, one model at a time)
        updates = METHODS.get(method)(
            TaskVectors(base, tuned, names), weights, density=density, seed=seed, combine=combine
        )
        for name, update in updates:
            merged[name] = (base[name].double() + scale * update).to(base[name].dtype)
    buffers = [n for n in floating if n not in merged]
    merged |= buffer_mix({n: base[n] for n in buffers}, [{n: t[n] for n in buffers} for t in tuned], weights, scale)
    return {name: merged.get(name, base[name]) for name in base}


def buffer_mix(
    base: dict[str, torch.Tensor], tuned: list[dict[str, torch.Tensor]], weights: list[float], scale: float
) -> dict[str, torch.Tensor]:
    """Floating-point buffers (running statistics) are never trimmed, dropped or extrapolated: b_base +
    s·Σ ŵ_i (b_i − b_base), ŵ_i = max(w_i, 0) / max(1, Σ_j max(w_j, 0)), s = clamp(scale, 0, 1): a convex
    combination of the base's and the models' statistics (a variance stays positive), in float64."""
    positive = [max(w, 0.0) for w in weights]
    mix = [w / max(1.0, sum(positive)) for w in positive]
    s = min(max(scale, 0.0), 1.0)
    return {
        n: (b.double() + s * sum(m * (t[n].double() - b.double()) for m, t in zip(mix, tuned, strict=True))).to(b.dtype)
        for n, b in base.items()
    }


def load_merge(spec: ModelSpec) -> Encoder:
    from overspec.models import FAMILIES, load_model, resolve_spec
    from overspec.models.checkpoints import check_fit
    from overspec.models.weight_space import _module, _same_attention_layout

    if spec.base is None or not spec.models or spec.method is None:
        raise ModelError(
            f"{spec.label}: family merge needs `base`, `models` ([{{model: REF, weight: W}}, ...]) and `method` "
            f"({', '.join(METHODS.names())})"
        )
    encoder = load_model(spec.base)
    base_fingerprint, base_preprocess = encoder.fingerprint, encoder.preprocess
    members = [load_model(m.model) for m in spec.models]
    modules = [_module(encoder, spec.label, "base"), *(_module(m, spec.label, "model") for m in members)]
    split = False
    for _ in range(2):  # a split q/k/v layout on any side splits every other (the second pass catches earlier ones)
        for module in modules[1:]:
            split = _same_attention_layout(modules[0], module) or split
    base_state = modules[0].state_dict()
    parameters = {n for n, _ in modules[0].named_parameters(remove_duplicate=False)}
    tuned = []
    for member, module in zip(members, modules[1:], strict=True):
        state = module.state_dict()
        check_fit(base_state, state, source=f"{spec.label}: model {member.name} against base {encoder.name}")
        tuned.append(state)
    density = spec.density if spec.density is not None else DEFAULT_DENSITY.get(spec.method, 1.0)
    params = {"density": density, "seed": spec.seed or 0, "combine": spec.combine or "task_arithmetic"}
    weights = [m.weight for m in spec.models]
    with torch.no_grad():
        settings = {"method": spec.method, "scale": spec.adapter_scale, "parameters": parameters, **params}
        merged = merge_states(base_state, tuned, weights, **settings)
        modules[0].load_state_dict(merged)
    heads, givers = {}, {}
    for entry, member in zip(spec.models, members, strict=True):
        task = entry.task or FAMILIES.get(resolve_spec(entry.model).family).task
        head = member.heads.get(task, member.head) if task != "general" and entry.weight != 0 else None
        if head is None or head.positive != "bonafide":
            continue
        if task in heads:
            raise ModelError(
                f"{spec.label}: models {givers[task]} and {member.name} both give a {task} head; set `task: general` "
                f"on one of them to drop its head"
            )
        heads[task], givers[task] = head, member.name
    encoder.module.eval()
    encoder.heads = {**encoder.heads, **heads}
    encoder.preprocess = encoder.preprocess.updated(spec.preprocess)
    identity = {
        "merge": spec.method,
        "rules": RULES,
        "base": base_fingerprint,
        "models": [[m.fingerprint, e.weight, e.task] for m, e in zip(members, spec.models, strict=True)],
        **({"density": density, "seed": params["seed"]} if spec.method != "task_arithmetic" else {}),
        **({"combine": params["combine"]} if spec.method == "dare" else {}),
        "scale": spec.adapter_scale,
        "preprocess": encoder.preprocess.model_dump(),
    }
    unchanged = spec.adapter_scale == 0 or all(w == 0 for w in weights)
    if unchanged and not heads and not split and encoder.preprocess == base_preprocess:
        encoder.fingerprint = base_fingerprint  # the base's weights bit for bit: same features, same cache
    else:
        encoder.fingerprint = digest(identity)
    encoder.settings = {**encoder.settings, "base_family": encoder.family, "merge": spec.method}
    encoder.name, encoder.family = spec.label, spec.family
    return encoder

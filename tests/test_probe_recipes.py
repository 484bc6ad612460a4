"""Linear-probe recipes: each equals its reference, every registered recipe runs, the recipe is cell identity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from overspec.errors import ConfigError, UnknownNameError
from overspec.protocols.linear_probe import probe
from overspec.protocols.probe_recipes import PROBE_RECIPES, validation_carve
from overspec.protocols.probe_recipes.search import binary_search


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny matrices: thread hand-offs would cost more than the arithmetic on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def synthetic(n_train: int, n_test: int, d: int, classes: int, *, seed: int = 0, separation: float = 0.6):
    """Clustered features with a common offset (as CLIP's) and 15 % label noise, so regularisation matters."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, d)) * separation
    offset = rng.normal(size=d) * 2.0

    def draw(m):
        y = rng.integers(0, classes, m)
        x = (offset + centres[y] + rng.normal(size=(m, d)) * rng.uniform(0.5, 2.0, size=d)).astype(np.float32)
        noisy = rng.random(m) < 0.15
        y[noisy] = rng.integers(0, classes, int(noisy.sum()))
        return x, y.astype(np.int64)

    return draw(n_train), draw(n_test)


class _Raw(torch.nn.Module):
    """Features as their own encoder, so CLIP_benchmark's Featurizer normalises them itself."""

    def encode_image(self, x):
        return x


def _accuracy(output, target, topk=(1,)):
    """CLIP_benchmark's ``accuracy`` with ``.item()``: its ``float()`` of a 1-element array fails on NumPy 2."""
    pred = output.topk(max(topk), 1, True, True)[1].t()
    correct = pred.eq(target.view(1, -1).expand_as(pred))
    return [correct[:k].reshape(-1).float().sum().item() / len(target) for k in topk]


def clip_benchmark_reference(x_train, y_train, x_test, *, seed, monkeypatch):
    """CLIP_benchmark 1.6.2's own functions, driven as its ``evaluate`` drives them after caching features
    (the sweep and final fit copied from it), on the same fit/validation rows.
    Returns (weight decay, test logits, weight decays trained in the sweep)."""
    lp = pytest.importorskip("clip_benchmark.metrics.linear_probe")
    from torch.utils.data import DataLoader

    # its train() moves the layer and batches to CUDA: no-ops here (DataParallel without GPUs passes through)
    monkeypatch.setattr(torch.nn.Module, "cuda", lambda self, *args, **kwargs: self)
    monkeypatch.setattr(torch.Tensor, "cuda", lambda self, *args, **kwargs: self)
    monkeypatch.setattr(lp, "accuracy", _accuracy)
    tried, train = [], lp.train

    def recorded_train(loader, input_shape, output_shape, weight_decay, *args):
        tried.append(weight_decay)
        return train(loader, input_shape, output_shape, weight_decay, *args)

    monkeypatch.setattr(lp, "train", recorded_train)
    featurizer = lp.Featurizer(_Raw(), normalize=True)
    fit, val = validation_carve(y_train, val_fraction=0.2, seed=seed)
    with torch.no_grad():
        train_features = featurizer(torch.as_tensor(x_train[fit]))
        features_val = featurizer(torch.as_tensor(x_train[val]))
        features_test = featurizer(torch.as_tensor(x_test))
    train_labels, targets_val = torch.as_tensor(y_train[fit]), torch.as_tensor(y_train[val])

    def loader(features, targets, shuffle=True):  # as evaluate's loaders (pin_memory aside: no GPU)
        return DataLoader(lp.FeatureDataset(features, targets), batch_size=64, shuffle=shuffle, num_workers=0)

    feature_train_loader = loader(train_features, train_labels)
    feature_val_loader = loader(features_val, targets_val)
    feature_train_val_loader = loader(
        np.concatenate((train_features, features_val)), np.concatenate((train_labels, targets_val))
    )
    feature_test_loader = loader(features_test, torch.zeros(len(x_test), dtype=torch.long), shuffle=False)
    input_shape, output_shape = train_features.shape[1], int(y_train.max()) + 1
    lr, epochs, amp, device, verbose = 0.1, 10, False, "cpu", False
    # from here: its evaluate(), verbatim
    wd_list = np.logspace(-6, 2, num=97).tolist()
    wd_list_init = np.logspace(-6, 2, num=7).tolist()
    wd_init_idx = [i for i, val in enumerate(wd_list) if val in wd_list_init]
    peak_idx = lp.find_peak(wd_list, wd_init_idx, feature_train_loader, feature_val_loader, input_shape,
                            output_shape, lr, epochs, amp, device, verbose, seed)  # fmt: skip
    step_span = 8
    while step_span > 0:
        left, right = max(peak_idx - step_span, 0), min(peak_idx + step_span, len(wd_list) - 1)
        peak_idx = lp.find_peak(wd_list, [left, peak_idx, right], feature_train_loader, feature_val_loader,
                                input_shape, output_shape, lr, epochs, amp, device, verbose, seed)  # fmt: skip
        step_span //= 2
    best_wd = wd_list[peak_idx]
    final_model = lp.train(feature_train_val_loader, input_shape, output_shape, best_wd, lr, epochs, amp, device, seed)
    logits, _ = lp.infer(final_model, feature_test_loader, amp, device)
    return best_wd, logits.numpy(), sorted(set(tried[:-1]))


def test_clip_benchmark_recipe_equals_clip_benchmark(monkeypatch):
    (x, y), (xt, yt) = synthetic(300, 200, 12, 4)
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    metrics, details = probe(x, y, xt, yt, 4, recipe="clip_benchmark", seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is left alone
    weight_decay, logits, tried = clip_benchmark_reference(x, y, xt, seed=3, monkeypatch=monkeypatch)
    assert details["weight_decay"] == weight_decay
    assert [wd for wd, _ in details["weight_decay_path"]] == tried  # the same search path
    assert len(tried) > 7
    reference_acc1 = float((logits.argmax(axis=1) == yt).mean())
    assert metrics["acc1"] == pytest.approx(reference_acc1, abs=1e-6)
    assert np.array_equal(details["correct"], logits.argmax(axis=1) == yt)


def test_clip_benchmark_default_recipe_equals_clip_benchmark_without_a_validation_split(monkeypatch):
    """Its ``evaluate`` without ``val_dataloader``: ``best_wd = 0``, ``train`` on the training loader, ``infer``."""
    lp = pytest.importorskip("clip_benchmark.metrics.linear_probe")
    from torch.utils.data import DataLoader

    monkeypatch.setattr(torch.nn.Module, "cuda", lambda self, *args, **kwargs: self)
    monkeypatch.setattr(torch.Tensor, "cuda", lambda self, *args, **kwargs: self)
    (x, y), (xt, yt) = synthetic(300, 200, 12, 4, seed=5)
    featurizer = lp.Featurizer(_Raw(), normalize=True)
    with torch.no_grad():
        train_features, features_test = featurizer(torch.as_tensor(x)), featurizer(torch.as_tensor(xt))
    train_loader = DataLoader(lp.FeatureDataset(train_features, torch.as_tensor(y)), batch_size=64, shuffle=True)
    test_loader = DataLoader(lp.FeatureDataset(features_test, torch.as_tensor(yt)), batch_size=64, shuffle=False)
    final_model = lp.train(train_loader, 12, int(y.max()) + 1, 0, 0.1, 10, False, "cpu", 7)
    logits, _ = lp.infer(final_model, test_loader, False, "cpu")
    metrics, details = probe(x, y, xt, yt, 4, recipe="clip_benchmark_default", seed=7)
    assert details["weight_decay"] == 0 and details["n_validation"] == 0
    assert np.array_equal(details["correct"], logits.numpy().argmax(axis=1) == yt)
    fit = PROBE_RECIPES.get("clip_benchmark_default")(x, y, xt, 4, seed=7)
    np.testing.assert_allclose(fit.logits, logits.numpy(), rtol=1e-5, atol=1e-6)  # the same layer, step for step
    other_seed = PROBE_RECIPES.get("clip_benchmark_default")(x, y, xt, 4, seed=8)
    assert not np.allclose(other_seed.logits, logits.numpy(), atol=1e-4)  # the comparison can fail


def clip_paper_transcription(x_train, y_train, x_test, *, seed):
    """The reference is the paper's text (Radford et al. 2021, appendix A.3): "we determine the L2
    regularization strength λ using a hyperparameter sweep on the validation sets over the range between
    10^-6 and 10^6, with 96 logarithmically spaced steps. To save compute required for the sweeps, we perform
    a parametric binary search that starts with λ = [10^-6, 10^-4, 10^-2, 1, 10^2, 10^4, 10^6] and iteratively
    halves the interval around the peak until it reaches a resolution of 8 steps per decade." With
    scikit-learn's L-BFGS logistic regression (max_iter 1000) on raw features; C = 1 / λ; ties go to the
    larger λ; refit on train+val. Written over exponents of λ, independently of the recipe's code."""
    import warnings

    from sklearn.linear_model import LogisticRegression

    fit, val = validation_carve(y_train, val_fraction=0.2, seed=seed)
    scores: dict[float, float] = {}

    def accuracy(exponent: float) -> float:
        if exponent not in scores:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = LogisticRegression(C=np.power(10.0, -exponent), max_iter=1000).fit(x_train[fit], y_train[fit])
            scores[exponent] = model.score(x_train[val], y_train[val])
        return scores[exponent]

    best = max([-6.0, -4.0, -2.0, 0.0, 2.0, 4.0, 6.0], key=lambda e: (accuracy(e), e))
    half = 1.0
    while half >= 1 / 8:
        candidates = [e for e in (best - half, best, best + half) if -6 <= e <= 6]
        best = max(candidates, key=lambda e: (accuracy(e), e))
        half /= 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        final = LogisticRegression(C=np.power(10.0, -best), max_iter=1000).fit(x_train, y_train)
    return np.power(10.0, -best), final.predict(x_test)


def test_clip_paper_recipe_equals_the_papers_text():
    (x, y), (xt, yt) = synthetic(300, 200, 12, 4, seed=1)
    metrics, details = probe(x, y, xt, yt, 4, recipe="clip_paper", seed=2)
    c, predictions = clip_paper_transcription(x, y, xt, seed=2)
    assert details["C"] == pytest.approx(c, rel=1e-12)
    assert metrics["acc1"] == pytest.approx(float((predictions == yt).mean()), abs=1e-6)
    assert np.array_equal(details["correct"], predictions == yt)


def test_binary_search_is_clip_benchmarks():
    """Starts at every 16th index (CLIP_benchmark's float-matched wd_init_idx), then spans 8, 4, 2, 1."""
    tried_order = []

    def score(index):
        tried_order.append(index)
        return -abs(index - 37) / 100 + 1

    peak, seen = binary_search(97, score)
    assert peak == 37 and tried_order[:7] == [0, 16, 32, 48, 64, 80, 96]
    # 32 -> [24, 32, 40] -> 40 -> [36, 40, 44] -> 36 -> [34, 36, 38] -> 36 (a tie: the first) -> [35, 36, 37]
    assert set(seen) == {0, 16, 32, 48, 64, 80, 96, 24, 40, 36, 44, 34, 38, 35, 37}


@pytest.mark.parametrize("recipe", PROBE_RECIPES.names())
def test_every_recipe_probes(recipe):
    (x, y), (xt, yt) = synthetic(120, 60, 8, 6, seed=4, separation=3.0)
    y[y == 5], yt[0] = 4, 5  # a class absent from training: never predicted, still counted
    metrics, details = probe(x, y, xt, yt, 6, recipe=recipe)
    assert details["recipe"] == recipe and 0.4 < metrics["acc1"] <= 1 and "acc5" in metrics
    assert not details["correct"][0] and details["n_train"] == 120
    assert (details["n_validation"] > 0) == (recipe != "clip_benchmark_default")  # the one path without a search


def test_unknown_recipe_names_the_known_ones():
    (x, y), (xt, yt) = synthetic(40, 10, 4, 2)
    with pytest.raises(UnknownNameError, match="unknown probe recipe 'clip_bench'; did you mean 'clip_benchmark'"):
        probe(x, y, xt, yt, 2, recipe="clip_bench")


def _experiment(tmp_path, **general):
    from overspec.config import Experiment

    folder = tmp_path / "digits"
    folder.mkdir(exist_ok=True)
    return Experiment(
        name="recipes",
        models=["clip-vit-b16.openai"],
        general={"datasets": ["digits"], "roots": {"digits": str(folder)}, **general},
    )


def test_config_probe_recipe_is_validated(tmp_path):
    from overspec._validation import validated
    from overspec.config import Experiment

    data = {"name": "x", "general": {"datasets": ["cifar10"], "probe_recipe": "clip_papr"}}
    with pytest.raises(ConfigError) as error:
        validated(Experiment, data, origin="x.yaml")
    assert "general.probe_recipe" in str(error.value)
    assert "unknown probe recipe 'clip_papr'; did you mean 'clip_paper'" in str(error.value)
    assert "available: clip_benchmark, clip_benchmark_default, clip_paper, lbfgs" in str(error.value)
    assert "\n" not in str(error.value)


def test_recipe_is_part_of_the_cell(tmp_path):
    """Different recipes are different cells; the default is written out too, so it stays pinned."""
    from overspec.runner.plan import Cell, ModelIdentity, ProtocolSpec, _evaluations

    def probe_options(**general) -> list[dict]:
        return [e[4] for e in _evaluations(_experiment(tmp_path, **general)) if e[1] == "linear_probe"]

    assert probe_options() == [{"recipe": "lbfgs"}]
    assert probe_options(probe_recipe="clip_paper", options={"linear_probe": {"k_shot": 4}}) == [
        {"k_shot": 4, "recipe": "clip_paper"}
    ]
    model = ModelIdentity("m", entry=None, fingerprint="f", task="general")

    def key(recipe: str) -> str:
        return Cell(model, "digits", "general", None, "d", ProtocolSpec("linear_probe", {"recipe": recipe})).key

    assert len({key(name) for name in PROBE_RECIPES}) == len(PROBE_RECIPES)


def test_recipe_set_twice_is_refused(tmp_path):
    with pytest.raises(ValueError, match="set the probe recipe with general.probe_recipe"):
        _experiment(tmp_path, options={"linear_probe": {"recipe": "clip_paper"}})

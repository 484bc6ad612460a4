"""Zero-shot and linear probe: equal to independent computations, and one forward pass per split."""

from __future__ import annotations

import json
import warnings

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image
from sklearn.linear_model import LogisticRegression

from helpers.cli import overspec
from helpers.models import tiny_clip
from overspec.data import load_dataset
from overspec.data.labelled import seeded_split
from overspec.models import load_model
from overspec.protocols import PROTOCOLS
from overspec.protocols.linear_probe import probe


def test_zeroshot_equals_open_clip_computed_directly(digits_folder, clip_file):
    data = load_dataset(str(digits_folder))
    encoder = load_model({"family": "openai_clip", "weights": str(clip_file)})
    result = PROTOCOLS.get("zeroshot")(encoder, data, num_workers=0, progress=False)

    model, tokenizer = tiny_clip(), open_clip.get_tokenizer("ViT-B-32")
    transform = open_clip.image_transform(32, is_train=False)
    test = data.split("test")
    with torch.no_grad():
        classifier = open_clip.build_zero_shot_classifier(
            model,
            tokenizer,
            data.classnames,
            [lambda c, t=t: t.replace("{c}", c) for t in data.templates],
            device="cpu",
            use_tqdm=False,
        )
        images = torch.stack([transform(Image.open(p)) for p in test.images.paths])
        features = torch.nn.functional.normalize(model.encode_image(images), dim=-1)
        logits = (100 * features @ classifier).numpy()
    labels = test.labels
    top5 = np.argsort(-logits, axis=1)[:, :5]
    assert result.metrics["acc1"] == (logits.argmax(1) == labels).mean()
    assert result.metrics["acc5"] == (top5 == labels[:, None]).any(1).mean()
    recall = np.mean([(logits.argmax(1)[labels == c] == c).mean() for c in range(10)])
    assert result.metrics["mean_per_class_recall"] == pytest.approx(recall)
    assert result.metrics["n_test"] == 150 and result.headline_metric == "acc1"


def test_each_split_is_embedded_once_across_protocols(digits_folder, clip_file):
    data = load_dataset(str(digits_folder))
    encoder = load_model({"family": "openai_clip", "weights": str(clip_file)})
    rows = []
    forward = encoder.encode_image
    encoder.encode_image = lambda batch: rows.append(len(batch)) or forward(batch)
    for protocol in ("zeroshot", "linear_probe", "zeroshot", "linear_probe"):
        PROTOCOLS.get(protocol)(encoder, data, num_workers=0, progress=False)
    assert sum(rows) == 150 + 300  # test once, train once


def sklearn_sweep(x, y, xt, yt, l2_values):
    """The reference: scikit-learn refit per value on the same standardised features and validation split."""
    fit, val = seeded_split(y, test_fraction=0.2, seed=0)

    def standard(a, ref):
        return (a - ref.mean(0)) / ref.std(0, ddof=1)

    best = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for l2 in l2_values:
            clf = LogisticRegression(C=1 / (l2 * len(fit)), max_iter=5000, tol=1e-6)
            accuracy = clf.fit(standard(x[fit], x[fit]), y[fit]).score(standard(x[val], x[fit]), y[val])
            if best is None or accuracy > best[0] + 1e-12:
                best = (accuracy, l2)
        clf = LogisticRegression(C=1 / (best[1] * len(y)), max_iter=5000, tol=1e-6).fit(standard(x, x), y)
    return clf.score(standard(xt, x), yt)


@pytest.mark.slow
@pytest.mark.parametrize("features", ["digits_pixels", "synthetic"])
def test_linear_probe_within_half_a_point_of_scikit_learn(features):
    if features == "digits_pixels":  # real data: scikit-learn's handwritten digits, raw pixels as features
        from sklearn.datasets import load_digits

        x_all, y_all = load_digits(return_X_y=True)
        x_all = x_all + np.random.default_rng(0).normal(scale=1e-3, size=x_all.shape)  # constant pixels
        x, y, xt, yt = x_all[:1200], y_all[:1200], x_all[1200:], y_all[1200:]
    else:
        import sys
        from pathlib import Path

        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
        from linear_probe import make_features

        (x, y), (xt, yt) = make_features(3000, 64, 10)
    metrics, details = probe(x, y, xt, yt, int(y.max()) + 1)
    reference = sklearn_sweep(x, y, xt, yt, [l2 for l2, _ in details["l2_path"]])
    assert abs(metrics["acc1"] - reference) <= 0.005, (metrics["acc1"], reference, details["l2"])
    assert details["l2"] > 0 and details["sklearn_C"] == pytest.approx(1 / (details["l2"] * len(y)))


def test_eval_command_json(digits_folder, clip_file, tmp_path):
    spec = tmp_path / "clip.yaml"
    spec.write_text(f"family: openai_clip\nweights: {clip_file}\n")
    alone = json.loads(
        overspec("eval", str(spec), str(digits_folder), "--protocol", "zeroshot", "--json", "--workers", "0").stdout
    )
    zs = alone["results"][0]
    assert {"acc1", "acc5", "mean_per_class_recall"} <= set(zs["metrics"]) and zs["counts"]["n_test"] == 150
    both = json.loads(  # two protocols in one process: one entry each, the zero-shot one unchanged
        overspec(
            "eval",
            str(spec),
            str(digits_folder),
            "--protocol",
            "zeroshot,linear_probe",
            "--json",
            "--workers",
            "0",
            "--k-shot",
            "5",
        ).stdout
    )
    assert both["results"][0] == zs
    lp = both["results"][1]
    direct = PROTOCOLS.get("linear_probe")(
        load_model(spec), load_dataset(str(digits_folder)), k_shot=5, num_workers=0, progress=False
    )
    acc1 = lp["metrics"]["acc1"]["value"]
    assert acc1 == direct.metrics["acc1"] and lp["details"]["l2"] == direct.details["l2"]  # the CLI adds nothing
    assert lp["details"]["k_shot"] == 5 and lp["details"]["n_train"] == 50 and acc1 > 0.1  # 10 classes: chance 0.1
    bad = overspec("eval", str(spec), "cifar11", "--json")
    assert bad.returncode == 2 and "did you mean 'cifar10'" in bad.stderr


def test_the_chunked_probe_objective_fits_the_same_model():
    """The objective in row chunks (what keeps ImageNet-1k train features within GPU memory) is the same function:
    the same L-BFGS path gives the same model, here with 7-row chunks of a 300-row problem."""
    import torch

    from overspec.protocols.logistic import Problem, fit_logistic, loss_and_gradient

    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 300)
    x = torch.from_numpy((rng.normal(size=(300, 16)) + np.eye(5, 16)[y] * 2).astype(np.float32))
    labels = torch.from_numpy(y)
    whole, chunked = Problem(x, labels, 5), Problem(x, labels, 5, chunk_rows=7)
    assert whole.chunk_rows >= 300 and chunked.chunk_rows == 7
    generator = torch.Generator().manual_seed(0)
    for l2 in (1e-1, 1e-3):
        gains = whole.gains(l2)
        for _ in range(3):  # the hand-written gradient, whole and in chunks, against autograd's at random points
            weight = torch.randn(16, 5, generator=generator, dtype=whole.zt.dtype, requires_grad=True)
            bias = torch.randn(5, generator=generator, dtype=whole.zt.dtype, requires_grad=True)
            logits = (whole.zt / gains[:, None]).T @ weight + bias
            penalty = ((l2 / 2) / (gains * gains)[:, None] * weight * weight).sum()
            reference = torch.nn.functional.cross_entropy(logits, labels) + penalty
            reference.backward()
            for problem in (whole, chunked):
                scaled = whole.zt / gains[:, None] if problem is whole else None
                loss, grad_weight, grad_bias = loss_and_gradient(problem, weight, bias, l2, gains, scaled=scaled)
                torch.testing.assert_close(loss, reference.detach(), rtol=1e-12, atol=1e-12)
                torch.testing.assert_close(grad_weight, weight.grad, rtol=1e-10, atol=1e-12)
                torch.testing.assert_close(grad_bias, bias.grad, rtol=1e-10, atol=1e-12)
        # both run to the optimum (gradient <= GRADIENT_TOLERANCE, float64): the same minimiser, the same predictions
        a, b = fit_logistic(whole, l2), fit_logistic(chunked, l2)
        assert a.converged and b.converged
        torch.testing.assert_close(b.weight, a.weight, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(b.bias, a.bias, atol=1e-4, rtol=1e-4)
        assert torch.equal(b.logits(x).argmax(1), a.logits(x).argmax(1))


def test_a_rerun_of_eval_is_answered_without_loading_the_model_until_its_inputs_change(
    digits_folder, clip_file, tmp_path
):
    import shutil
    import subprocess
    import sys

    spec = tmp_path / "clip.yaml"
    spec.write_text(f"family: openai_clip\nweights: {clip_file}\n")
    data = shutil.copytree(digits_folder, tmp_path / "digits")
    args = ["eval", str(spec), str(data), "--protocol", "zeroshot,linear_probe", "--json", "--workers", "0"]
    first = overspec(*args)
    assert first.returncode == 0, first.stderr
    # the rerun in a process where loading a model, or importing torch, fails
    guarded = (
        "import sys; sys.modules['torch'] = None\n"
        "import overspec.models as m, overspec._threads as t\n"
        "def refuse(*a, **k): raise SystemExit('the model was loaded')\n"
        "m.load_model = t.set_torch_threads = refuse\n"  # (the runner sets torch's threads just before loading)
        "from overspec.cli import run; run()"
    )
    again = subprocess.run([sys.executable, "-c", guarded, *args], capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    before, after = json.loads(first.stdout), json.loads(again.stdout)
    # the same document but for when it was made; torch's version read without importing torch is the imported one's
    assert after.pop("provenance")["torch"] == before.pop("provenance")["torch"] == torch.__version__
    assert after == before
    # one test image replaced by another (same name): computed again, with the model
    test_images = sorted((data / "test").rglob("*.png"))
    shutil.copy(test_images[-1], test_images[0])
    changed = subprocess.run([sys.executable, "-c", guarded, *args], capture_output=True, text=True, timeout=120)
    assert changed.returncode != 0 and "the model was loaded" in changed.stderr

"""Build a module without drawing random initial values for parameters a strict state-dict load overwrites next.

Random initialisation of a ViT-L/14 CLIP costs seconds on a CPU and every value is thrown away by the load that
follows. transformers skips it the same way (``no_init_weights``); written here so that building an open_clip
CLIP does not import transformers. Only for a build followed by a *strict* load: a parameter the load does not
cover would keep uninitialised memory, and a strict load refuses exactly that case.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

INIT_FUNCTIONS = (
    "uniform_",
    "normal_",
    "trunc_normal_",
    "constant_",
    "ones_",
    "zeros_",
    "eye_",
    "dirac_",
    "xavier_uniform_",
    "xavier_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
    "orthogonal_",
    "sparse_",
)


def _unchanged(tensor, *args, **kwargs):
    return tensor


@contextmanager
def initialisation_skipped() -> Iterator[None]:
    """``torch.nn.init``'s in-place initialisers leave tensors as allocated while the block runs."""
    import torch.nn.init as init

    saved = {name: getattr(init, name) for name in INIT_FUNCTIONS}
    for name in saved:
        setattr(init, name, _unchanged)
    try:
        yield
    finally:
        for name, function in saved.items():
            setattr(init, name, function)

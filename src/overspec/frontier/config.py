"""The ``frontier:`` section of an experiment config: forgetting-control methods, each swept over one strength.

frontier:
  base: effnet                       # a model of `models:`: every curve starts there, GELO's denominator
  methods:
    - {name: lora-scale, task: fr, model: fr_lora.yaml, grid: [0.25, 0.5, 1]}         # scale the LoRA update
    - {name: wise-ft, task: fr, model: fr_full.yaml, grid: [0.25, 0.5, 1]}            # WiSE-FT of a full fine-tune
    - {name: l2-sp, task: fr, finetune: fr.yaml, strength: l2sp_weight, grid: [0.1, 1, 10]}
    - {name: distillation, task: fr, finetune: fr.yaml, strength: distill_weight, grid: [0.1, 1]}
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# what one strength value changes: the update's scale (LoRA scale, WiSE-FT's coefficient, a merge's λ), or
# a forgetting-control weight of the fine-tune (``finetune/config.py`` Forgetting), trained once per value
STRENGTHS = ("scale", "l2sp_weight", "distill_weight")


class FrontierMethod(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")  # the method's label (points are named NAME@VALUE)
    task: Literal["fr", "mad", "pad"]  # the biometric task it is tuned for
    model: str | dict | None = None  # strength scale: the fine-tuned model whose update is scaled
    finetune: str | None = None  # a fine-tune config (overspec finetune): trained per value, or once to scale
    strength: Literal["scale", "l2sp_weight", "distill_weight"] = "scale"  # what the grid sets (STRENGTHS above)
    # the strengths evaluated (the base is every curve's other end); strict: a YAML `true` or "0.5" is no strength
    grid: list[Annotated[float, Field(strict=True)]] = Field(min_length=1)

    @field_validator("grid")
    @classmethod
    def _finite(cls, grid: list[float]) -> list[float]:
        bad = [v for v in grid if not math.isfinite(v) or v < 0]
        if bad:
            raise ValueError(f"strengths must be finite and >= 0; got {bad[0]}")
        grid = sorted(set(grid))
        labels = [f"{v:g}" for v in grid]  # a point's name and training folder: METHOD@VALUE
        same = [v for v, label in zip(grid, labels, strict=True) if labels.count(label) > 1]
        if same:
            raise ValueError(f"strengths {same[0]!r} and {same[1]!r} share the label {same[0]:g}; space them further")
        return grid

    @model_validator(mode="after")
    def _one_source(self) -> FrontierMethod:
        if (self.model is None) == (self.finetune is None):
            raise ValueError(
                f"method {self.name}: give `model` (a fine-tuned model) or `finetune` (a config), not both"
            )
        if self.model is not None and self.strength != "scale":
            raise ValueError(
                f"method {self.name}: strength {self.strength} trains one model per value: give `finetune: CONFIG`"
            )
        return self

    @property
    def toward_base(self) -> bool:
        """Whether a larger strength moves the model toward the base (a regulariser) rather than away (a scale)."""
        return self.strength != "scale"


class FrontierSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    base: str  # a model of `models:`: the start of every curve and GELO's denominator
    methods: list[FrontierMethod] = Field(min_length=1)  # the forgetting-control methods, each with its grid
    # a spec every point is wrapped in, the point going under its `image` key (e.g. ConSE for zero-shot)
    wrap: dict | None = None
    gelo_protocols: list[str] | None = None  # GELO averaged over these general protocols (default: every one run)
    reference_gelo: float = 0.0  # the hypervolume's GELO floor (its other corner is the base's biometric score)
    match: dict[str, float] = Field(default_factory=dict)  # task -> the biometric score methods are compared at
    n_boot: int = Field(2000, ge=100)  # paired bootstrap draws for every interval of the frontier (frontier/paired.py)
    seed: int = 0  # seed of the bootstrap draws

    @model_validator(mode="after")
    def _unique(self) -> FrontierSettings:
        names = [m.name for m in self.methods]
        if len(set(names)) != len(names):
            raise ValueError(f"method names must differ; got {names}")
        return self

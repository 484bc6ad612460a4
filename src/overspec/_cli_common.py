"""What several command modules share: the model reference's help text and the --device check (a module of its
own, since cli.py imports the other command modules and cannot be imported back by them)."""

from __future__ import annotations

import typer

from overspec.errors import ConfigError

MODEL_HELP = (
    "A model reference: a zoo name, a spec file, hf-hub:ORG/REPO, open_clip:ARCH/TAG, timm/NAME.TAG (or NAME.TAG), "
    "or a transformers CLIP ORG/REPO (`overspec models --resolve REF` shows the spec)."
)


def device_option(value: str | None) -> str | None:
    from overspec._device import check_device_spelling

    try:
        return check_device_spelling(value, where="--device")
    except ConfigError as exc:
        raise typer.BadParameter(str(exc).removeprefix("--device ")) from None

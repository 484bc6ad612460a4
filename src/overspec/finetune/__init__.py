"""LoRA fine-tuning for FR (margin heads), MAD and PAD (binary heads), with forgetting control, and
trade-off sweeps between a base model and its specialist."""

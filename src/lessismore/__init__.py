"""lessismore: LIMA-style "less is more" fine-tuning as a reproducible DVC + Prefect pipeline (see README.md)."""

"""Training entry points: speech models (NeMo) built from our configs on synthetic data."""

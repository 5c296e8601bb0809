"""Experiment configurations (one TOML file per condition) and presets that scale them."""

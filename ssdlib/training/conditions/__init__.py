"""Experimental conditions: one TOML file per condition (`configs/`), its validated `Config`,
and the presets that scale a condition's length."""

from .config import Config, config_from_dict, config_names, load_config
from .presets import PAPER_STEPS, PRESETS, Preset, get_preset

__all__ = ["PAPER_STEPS", "PRESETS", "Config", "Preset", "config_from_dict", "config_names", "get_preset", "load_config"]

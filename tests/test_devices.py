"""Bad devices are errors that name the bad value, before anything is trained or written."""

import pytest
import torch

from ssdlib.hardware import resolve_device
from ssdlib.train import main
from ssdlib.training.conditions import get_preset, load_config
from ssdlib.training.trainer import Trainer


def test_cpu_resolves():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize("device, words", [("gpu0", "unknown device 'gpu0'"), ("mps", "'mps' is not supported"),
                                           ("", "unknown device ''")])
def test_unknown_devices_are_named(device, words):
    with pytest.raises(ValueError, match=words):
        resolve_device(device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_says_why():
    with pytest.raises(ValueError, match="'cuda:0' needs CUDA, but this machine has"):
        resolve_device("cuda:0")
    config = load_config("cleanup_a3c")
    with pytest.raises(ValueError, match="'cuda' needs CUDA"):
        Trainer(config, get_preset("smoke", config.env), [0], "cuda")


def test_cli_rejects_a_bad_device_before_writing(tmp_path, capsys):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as stop:
        main(["cleanup_a3c", "--device", "gpu0", "--out", str(out), "--no-progress"])
    assert "unknown device 'gpu0'" in str(stop.value)
    assert not out.exists()


def test_cli_help_shows_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for default in ("(default: smoke)", "(default: 0)", "(default: cpu)"):
        assert default in text
    assert "smoke, cpu, gpu, campaign, paper" in text

"""Bad devices are errors that name the bad value, before anything is trained or written."""

import pytest
import torch

from ssdlib.hardware import cache_bytes_per_core, count_cpus, resolve_device
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


def test_count_cpus_reads_sysfs_cpu_lists():
    assert count_cpus("0") == 1
    assert count_cpus("0-1\n") == 2
    assert count_cpus("0-3,8,10-11") == 7


def write_cache(folder, name: str, kind: str, level: int, size: str, shared: str) -> None:
    index = folder / name
    index.mkdir(parents=True)
    for file, text in (("type", kind), ("level", str(level)), ("size", size), ("shared_cpu_list", shared)):
        (index / file).write_text(text + "\n")


def test_cache_bytes_per_core_takes_the_largest_share_of_a_data_cache(tmp_path):
    """The larger of a core's L2 and its share of the L3; instruction and L1 caches, unreadable
    entries and a missing folder do not count (the default then)."""
    write_cache(tmp_path, "index0", "Data", 1, "48K", "0")
    write_cache(tmp_path, "index1", "Instruction", 1, "99999K", "0")
    write_cache(tmp_path, "index2", "Unified", 2, "2048K", "0")
    write_cache(tmp_path, "index3", "Unified", 3, "24576K", "0-15")  # 1.5 MiB a core
    assert cache_bytes_per_core(caches=tmp_path) == 2048 * 1024
    (tmp_path / "index3" / "shared_cpu_list").write_text("0-1\n")  # 12 MiB a core
    assert cache_bytes_per_core(caches=tmp_path) == 12 * 2**20
    (tmp_path / "index3" / "size").write_text("garbled\n")
    assert cache_bytes_per_core(caches=tmp_path) == 2048 * 1024
    assert cache_bytes_per_core(default=123, caches=tmp_path / "missing") == 123

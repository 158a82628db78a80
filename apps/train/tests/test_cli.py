"""freqlat-train's command line: config resolution, its errors, and what a local run writes."""

import json
import re
import subprocess
import sys

import pytest
import torch

from freqlat.core import list_checkpoints
from freqlat.core.config import config_keys
from freqlat.train.cli import main
from freqlat.train.config import TokenizerTrainConfig, read_config, resolve_config


def _error(capsys):
    return capsys.readouterr().err


def test_unknown_config_key_is_a_clear_error(tmp_path, tiny_args, capsys):
    code = main([*tiny_args(tmp_path / "run"), "--learning-rate", "0.1"])
    assert code == 2
    err = _error(capsys)
    assert "unknown config key 'learning_rate'" in err
    assert "'lr'" in err  # the valid keys are listed
    assert not (tmp_path / "run").exists()


def test_wrong_value_type_is_a_clear_error(tmp_path, tiny_args, capsys):
    assert main([*tiny_args(tmp_path / "run"), "--ema-decay", "high"]) == 2
    assert "config key 'ema_decay' expects float, got 'high'" in _error(capsys)
    assert main(["tokenizer", "--preset", "kl-vae-f16d16-tiny", "--steps", "2.5"]) == 2
    assert "config key 'steps' expects int" in _error(capsys)


def test_missing_data_root_is_a_clear_error(tmp_path, tiny_args, capsys):
    missing = tmp_path / "no-such-imagenet"
    assert main(tiny_args(tmp_path / "run", data=missing)) == 2
    err = _error(capsys)
    assert f"data root {missing} does not exist" in err


def test_unknown_preset_and_unknown_model_key_are_errors(tmp_path, capsys):
    assert main(["tokenizer", "--preset", "kl-vae-f99", "--run-dir", str(tmp_path)]) == 2
    assert "unknown preset 'kl-vae-f99'" in _error(capsys)
    args = ["tokenizer", "--preset", "kl-vae-f16d16-tiny", "--model-overrides", '{"chanels": 8}']
    assert main(args) == 2
    assert "chanels" in _error(capsys)


def test_typed_values_none_bool_and_json_are_parsed():
    config = resolve_config(
        "fa-vae-f16d32-tiny",
        {
            "use_vf": "false",
            "disc_lr": "none",
            "model_overrides": '{"band_scale": 2.0}',
            "slurm_additional_parameters": '{"constraint": "a100"}',
        },
    )
    assert config.use_vf is False and config.disc_lr is None
    assert config.model_overrides == {"band_scale": 2.0}
    assert config.launch_options().slurm_additional_parameters == {"constraint": "a100"}
    assert config.image_size == 32 and config.perceptual_weight == 0.0  # tiny recipe


def test_tasks_per_node_is_one_per_gpu_unless_given():
    preset = "kl-vae-f16d16-tiny"
    assert resolve_config(preset, {"gpus_per_node": "4"}).launch_options().tasks == 4
    assert resolve_config(preset, {"gpus_per_node": "0"}).launch_options().tasks == 1
    cpu = resolve_config(preset, {"gpus_per_node": "0", "tasks_per_node": "2"})
    assert cpu.launch_options().tasks_per_node == 2 and cpu.launch_options().tasks == 2
    with pytest.raises(ValueError, match="must equal gpus_per_node"):
        resolve_config(preset, {"launcher": "slurm", "gpus_per_node": "4", "tasks_per_node": "2"})


def test_paper_preset_defaults_are_the_published_recipe():
    config = resolve_config("fa-vae-f16d64", {})
    assert (config.image_size, config.batch_size, config.lr) == (256, 16, 1e-4)
    assert (config.beta1, config.beta2, config.kl_weight) == (0.5, 0.9, 1e-6)
    assert (config.disc_start, config.disc_weight, config.perceptual_weight) == (5001, 0.5, 1.0)
    assert config.vf_weight == 0.1 and config.precision == "fp32"


def test_help_lists_every_config_key_with_its_type_default_and_help_without_torch():
    code = (
        "import sys; from freqlat.train.cli import main\n"
        "try:\n    main(sys.argv[1:])\n"
        "except SystemExit as exc:\n    assert exc.code == 0, exc.code\n"
        "assert 'torch' not in sys.modules, 'torch was imported for --help'\n"
    )
    args = ["tokenizer", "--preset", "fa-vae-f16d32-tiny", "--help"]
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    squashed = "".join(text.split())  # argparse wraps lines at spaces and hyphens
    for key in config_keys(TokenizerTrainConfig).values():
        assert key.option in text and "".join(key.help.split()) in squashed, key.name
    assert "--image-size INT training crop side in pixels (int, default: 32)" in text
    assert "--launcher STR" in text and "one of local, local-submitit, debug, slurm" in text
    assert "--run-dir STR" in text and "default:runs/fa-vae-f16d32-tiny" in squashed


def test_launch_options_are_config_keys_and_tasks_per_node_is_honoured():
    config = resolve_config(
        "kl-vae-f16d16-tiny",
        {"launcher": "slurm", "gpus_per_node": "0", "tasks_per_node": "4", "nodes": "2"},
    )
    options = config.launch_options()
    assert (options.launcher, options.nodes, options.tasks) == ("slurm", 2, 4)
    assert options.job_name == "freqlat-train-kl-vae-f16d16-tiny"
    assert resolve_config("kl-vae-f16d16", {"gpus_per_node": 8}).launch_options().tasks == 8
    assert config.to_dict()["tasks_per_node"] == 4


def test_local_run_writes_config_checkpoints_grids_and_export(finished_run, tiny_args):
    run_dir = finished_run
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["preset"] == "kl-vae-f16d16-tiny" and saved["steps"] == 12
    assert read_config(run_dir).to_dict() == saved
    steps = [int(p.name.split("_")[1]) for p in list_checkpoints(run_dir / "checkpoints")]
    assert steps == [9, 12]  # every 3 steps, the last 2 kept
    assert sorted(p.name for p in (run_dir / "grids").iterdir()) == [
        "step_000000006.png",
        "step_000000012.png",
    ]
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    log = (run_dir / "train.log").read_text()
    assert log.count("step 12:") == 1
    # every log line after the first step reports throughput and the share of time spent on data
    last = next(line for line in log.splitlines() if "step 12:" in line)
    rate = float(re.search(r"time/images_per_s ([0-9.e+-]+)", last).group(1))
    wait = float(re.search(r"time/data_wait_fraction ([0-9.e+-]+)", last).group(1))
    assert rate > 0 and 0 <= wait <= 1
    from freqlat.tokenizers import from_pretrained

    ema = from_pretrained(run_dir / "export" / "ema")
    assert ema.preset == "kl-vae-f16d16-tiny"
    with torch.no_grad():
        out = ema(torch.zeros(1, 3, 32, 32), sample=False)
    assert out.recon.shape == (1, 3, 32, 32)
    # the same command again finds the run finished and only re-exports
    assert main(tiny_args(run_dir)) == 0
    # the same run directory with other settings is refused
    assert main(tiny_args(run_dir, lr=1e-3)) == 2

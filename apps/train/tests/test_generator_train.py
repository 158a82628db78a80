"""freqlat-train generator: recipes, the cache deciding the model's input, errors, what a run writes,
and the three families end to end at tiny size."""

import json
import shutil
import subprocess
import sys

import pytest
import torch

from freqlat.core import list_checkpoints
from freqlat.core.config import config_keys
from freqlat.generators import LatentCache, LatentSpace, from_pretrained
from freqlat.tokenizers import load_tokenizer
from freqlat.train.cache_config import CacheLatentsConfig
from freqlat.train.cli import main
from freqlat.train.generator_config import (
    GeneratorTrainConfig,
    generator_defaults,
    read_generator_config,
    resolve_generator_config,
)

TINY_DIT = {"hidden_size": 64, "depth": 2}  # the tiny run's model_overrides (conftest)


def _error(capsys):
    return " ".join(capsys.readouterr().err.split())


def test_paper_presets_default_to_upstreams_recipes(latent_cache):
    dit = resolve_generator_config("lightningdit-xl-1", {"latents": str(latent_cache)})
    assert (dit.lr, dit.beta1, dit.beta2, dit.weight_decay) == (2e-4, 0.9, 0.95, 0.0)
    assert (dit.batch_size, dit.steps, dit.ema_decay, dit.precision) == (
        1024,
        80_000,
        0.9999,
        "bf16",
    )
    assert (dit.time_sampling, dit.cosine_loss, dit.grad_clip) == ("logit-normal", True, 0.0)
    assert (
        dit.random_flip
        and dit.lr_schedule == "constant"
        and dit.run_dir == "runs/lightningdit-xl-1"
    )
    ldm = generator_defaults("ldm-cin256-v2")
    assert (ldm["lr"], ldm["beta2"], ldm["weight_decay"], ldm["ema_decay"]) == (
        1e-4,
        0.999,
        0.01,
        0.0,
    )
    assert (ldm["batch_size"], ldm["steps"], ldm["precision"]) == (1200, 178_000, "fp32")
    var = generator_defaults("var-d16")
    # 200 epochs of ceil(1,281,167 / 768) = 1669 steps, warm-up 4 epochs, lr 1e-4 x 768 / 256
    assert (var["steps"], var["warmup_steps"], var["lr"]) == (333_800, 6676, pytest.approx(3e-4))
    assert (var["weight_decay"], var["final_weight_decay"], var["grad_clip"]) == (0.05, 0.05, 2.0)
    assert (var["lr_schedule"], var["min_lr_ratio"], var["precision"]) == ("lin0", 0.1, "fp16")
    assert not var["random_flip"] and var["ema_decay"] == 0.0
    d30 = generator_defaults("var-d30")
    assert (d30["batch_size"], d30["final_weight_decay"], d30["min_lr_ratio"]) == (1024, 0.08, 0.01)
    tiny = generator_defaults("lightningdit-tiny")
    assert (tiny["precision"], tiny["steps"], tiny["batch_size"]) == ("fp32", 200, 16)


def test_the_cache_decides_the_models_input_and_a_contradiction_is_refused(
    tmp_path, latent_cache, token_cache, generator_args, capsys
):
    from freqlat.train.generator_model import build_generator, check_cache

    config = resolve_generator_config("lightningdit-xl-1", {"latents": str(latent_cache)})
    with torch.device("meta"):
        model = build_generator(config, check_cache(config))
    assert (model.config.in_channels, model.config.input_size) == (16, 2)
    run = tmp_path / "run"
    args = generator_args(run, latent_cache, model_overrides='{"in_channels": 32}')
    assert main(args) == 2
    err = _error(capsys)
    assert "model_overrides sets in_channels=32" in err and "gives in_channels=16" in err
    assert main(generator_args(run, latent_cache, preset="var-tiny", model_overrides="{}")) == 2
    assert "var-tiny trains on token maps" in _error(capsys)
    args = generator_args(run, token_cache, model_overrides='{"num_classes": 3}')
    assert main(args) == 2
    assert "has 7 classes, more than the model's num_classes 3" in _error(capsys)
    assert not run.exists()


def test_bad_commands_are_one_line_errors(tmp_path, latent_cache, generator_args, capsys):
    run = tmp_path / "run"
    assert main(generator_args(run, tmp_path / "nothing")) == 2
    assert "is not a finished latent cache: no manifest.json" in _error(capsys)
    assert main(generator_args(run, latent_cache, label_smoothing=0.1)) == 2
    assert "label_smoothing applies to VAR presets" in _error(capsys)
    args = generator_args(run, latent_cache, preset="ldm-tiny", model_overrides="{}")
    assert main([*args, "--time-sampling", "uniform"]) == 2
    assert "apply to flow presets" in _error(capsys)
    assert main(generator_args(run, latent_cache, ema_decay=1.5)) == 2
    assert "ema_decay must lie in [0, 1]" in _error(capsys)
    assert main(generator_args(run, latent_cache, preset="dit-xl-2", model_overrides="{}")) == 2
    assert "unknown preset 'dit-xl-2'" in _error(capsys)
    assert main(["generator", "--latents", str(latent_cache)]) == 2
    assert "--preset is required" in _error(capsys)
    assert not run.exists()


@pytest.mark.parametrize("command", ["generator", "cache-latents"])
def test_help_lists_every_config_key_without_torch(command):
    code = (
        "import sys; from freqlat.train.cli import main\n"
        "try:\n    main(sys.argv[1:])\n"
        "except SystemExit as exc:\n    assert exc.code == 0, exc.code\n"
        "assert 'torch' not in sys.modules, 'torch was imported for --help'\n"
    )
    args = [command, "--help"]
    if command == "generator":
        args[1:1] = ["--preset", "lightningdit-tiny"]
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    squashed = "".join(text.split())
    config = GeneratorTrainConfig if command == "generator" else CacheLatentsConfig
    for key in config_keys(config).values():
        assert key.option in text and "".join(key.help.split()) in squashed, key.name
    if command == "generator":
        assert "--precision STR training precision (str, default: fp32" in text  # tiny recipe
        assert "default:runs/lightningdit-tiny" in squashed
    else:
        assert "--tokenizer STR" in text and "required" in text


def test_a_run_writes_config_checkpoints_grids_tensorboard_and_exports_with_its_latent_space(
    finished_generator_run, latent_cache
):
    run = finished_generator_run
    saved = json.loads((run / "config.json").read_text())
    assert saved["preset"] == "lightningdit-tiny" and saved["latents"] == str(latent_cache)
    assert read_generator_config(run).to_dict() == saved
    steps = [int(p.name.split("_")[1]) for p in list_checkpoints(run / "checkpoints")]
    assert steps == [9, 12]
    assert sorted(
        p.name for p in (run / "checkpoints" / "step_000000012").glob("*.safetensors")
    ) == [
        "ema.safetensors",
        "model.safetensors",
    ]
    assert sorted(p.name for p in (run / "grids").iterdir()) == [
        "step_000000006.png",
        "step_000000012.png",
    ]
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    log = (run / "train.log").read_text()
    last = next(line for line in log.splitlines() if "step 12:" in line)
    assert (
        "cosine" in last and "mse" in last and "time/images_per_s" in last and "grad_norm" in last
    )
    cache_space = LatentCache(latent_cache).latent_space
    assert LatentSpace.load(run) == cache_space
    for name in ("model", "ema"):
        export = run / "export" / name
        assert LatentSpace.load(export) == cache_space
        model = from_pretrained(export).eval()
        assert model.preset == "lightningdit-tiny" and model.config.in_channels == 16
        with torch.no_grad():
            out = model(torch.zeros(1, 16, 2, 2), torch.zeros(1), torch.zeros(1, dtype=torch.long))
        assert out.shape == (1, 16, 2, 2)
    record = json.loads((run / "latent_cache.json").read_text())
    assert record["tokenizer_sha256"] == LatentCache(latent_cache).manifest.tokenizer_sha256


def test_a_resumed_run_refuses_a_cache_rebuilt_with_other_statistics(
    tmp_path, finished_generator_run, latent_cache, cache_args, generator_args, capsys, one_thread
):
    cache, run = tmp_path / "cache", tmp_path / "run"
    shutil.copytree(latent_cache, cache)
    assert main(generator_args(run, cache, steps=3, grid_every=3)) == 0
    shutil.rmtree(cache)
    assert main(cache_args(cache, seed=1)) == 0  # other posterior draws: other statistics
    assert main(generator_args(run, cache, steps=3, grid_every=3)) == 2
    err = _error(capsys)
    assert f"{run} was trained in the latent space of 'random:kl-vae-f16d16-tiny'" in err
    assert "use a new --run-dir" in err


def test_ldm_tiny_trains_end_to_end_and_without_ema_its_ema_is_its_weights(
    tmp_path, latent_cache, generator_args, one_thread
):
    run = tmp_path / "ldm"
    args = generator_args(
        run, latent_cache, preset="ldm-tiny", model_overrides="{}", steps=4, checkpoint_every=2,
        grid_every=4, grid_steps=4, ema_decay=0.0,
    )  # fmt: skip
    assert main(args) == 0
    assert (run / "grids" / "step_000000004.png").is_file()
    assert "mse" in (run / "train.log").read_text().splitlines()[-3]
    model, ema = (from_pretrained(run / "export" / name) for name in ("model", "ema"))
    assert model.config.latent_channels == 16 and type(model).__name__ == "LDMUNet"
    for key, value in model.state_dict().items():
        assert torch.equal(value, ema.state_dict()[key]), key  # upstream LDM keeps no EMA
    assert LatentSpace.load(run / "export" / "ema") == LatentCache(latent_cache).latent_space


def test_var_tiny_trains_end_to_end_on_cached_tokens(
    tmp_path, token_cache, generator_args, one_thread
):
    run = tmp_path / "var"
    args = generator_args(
        run, token_cache, preset="var-tiny", model_overrides="{}", steps=4, checkpoint_every=2,
        grid_every=4, grid_cfg_scale=1.5,
    )  # fmt: skip
    assert main(args) == 0
    assert (run / "grids" / "step_000000004.png").is_file()
    assert "accuracy_last_scale" in (run / "train.log").read_text()
    space = LatentSpace.load(run / "export" / "ema")
    assert space.normalization == "none" and space.tokenizer == "random:ms-vq-vae-tiny"
    tokenizer = load_tokenizer(space.tokenizer).model
    model = from_pretrained(run / "export" / "ema", tokenizer=tokenizer).eval()
    assert (model.config.vocab_size, model.patch_sizes) == (256, (1, 2, 3, 4))
    tokens = model.generate(
        torch.tensor([0, 6]), cfg=1.5, generator=torch.Generator().manual_seed(0)
    )
    assert tokenizer.decode_indices(tokens).shape == (2, 3, 64, 64)


def test_the_ema_starts_from_the_initial_weights_as_upstreams(
    tmp_path, latent_cache, generator_args, one_thread
):
    from freqlat.core import seed_everything
    from freqlat.generators import create_generator

    run = tmp_path / "run"
    assert main(generator_args(run, latent_cache, steps=2, ema_decay=1.0)) == 0
    seed_everything(0, 0)  # the run's seed on rank 0, before it builds the model
    initial = create_generator("lightningdit-tiny", in_channels=16, input_size=2, **TINY_DIT)
    ema, trained = (from_pretrained(run / "export" / name) for name in ("ema", "model"))
    for key, value in initial.state_dict().items():
        assert torch.equal(ema.state_dict()[key], value), key  # decay 1: never moved
    assert not torch.equal(
        trained.state_dict()["final_layer.linear.weight"],
        initial.state_dict()["final_layer.linear.weight"],
    )

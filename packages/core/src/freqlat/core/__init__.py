"""freqlat.core: what the freqlat apps share.

Data (ImageNet layout, image folders, the embedded scikit-image photographs), a resumable data
order, atomic training checkpoints, EMA, torch.distributed set-up, the submitit launcher,
rank-0 logging, typed run configs (command line, ``--help``, ``config.json``) and the training
harness the loops are written over (precision, optimiser steps, throughput, resume).

Names are imported on first use, so that a command line can parse its arguments and print its
``--help`` (:mod:`freqlat.core.config`, :class:`LaunchOptions`) before torch is loaded.
"""

from __future__ import annotations

from freqlat.core.lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    # checkpoints
    "CheckpointInfo": "checkpoint",
    "latest_checkpoint": "checkpoint",
    "list_checkpoints": "checkpoint",
    "load_checkpoint": "checkpoint",
    "prune_checkpoints": "checkpoint",
    "read_metadata": "checkpoint",
    "save_checkpoint": "checkpoint",
    # typed configs
    "CONFIG_FILE": "config",
    "ConfigKey": "config",
    "add_config_arguments": "config",
    "build_config": "config",
    "check_fields": "config",
    "check_value": "config",
    "config_field": "config",
    "config_from_dict": "config",
    "config_keys": "config",
    "config_to_dict": "config",
    "parse_overrides": "config",
    "parse_value": "config",
    "read_config_json": "config",
    "typed_values": "config",
    "write_config_json": "config",
    # data
    "CROPS": "data",
    "BadImageError": "data",
    "ImageFolderDataset": "data",
    "adm_center_crop": "data",
    "imagenet_split": "data",
    "load_rgb": "data",
    "resize_center_crop": "data",
    "EmbeddedPhotos": "embedded",
    "open_dataset": "embedded",
    # distributed
    "DistributedContext": "distributed",
    "all_reduce_mean": "distributed",
    "barrier": "distributed",
    "broadcast_from_main": "distributed",
    "cleanup": "distributed",
    "detect_placement": "distributed",
    "get_rank": "distributed",
    "get_world_size": "distributed",
    "init_distributed": "distributed",
    "is_main": "distributed",
    "seed_everything": "distributed",
    "EMA": "ema",
    # launching
    "LAUNCHERS": "launch_options",
    "LaunchOptions": "launch_options",
    "write_run_config": "launch_options",
    "PreemptionGuard": "launcher",
    "launch": "launcher",
    "make_executor": "launcher",
    # logging
    "MetricWriter": "log",
    "progress": "log",
    "save_image_grid": "log",
    "setup_logging": "log",
    # training harness
    "LR_SCHEDULES": "recipe",
    "PRECISIONS": "recipe",
    "annealed_weight_decay": "recipe",
    "lr_factor": "recipe",
    "ResumableLoader": "sampler",
    "ResumableSampler": "sampler",
    "RunCheckpoints": "training",
    "ThroughputMeter": "training",
    "all_reduce_gradients": "training",
    "autocast": "training",
    "grad_scaler": "training",
    "optimizer_step": "training",
    "set_learning_rate": "training",
    "wrap_ddp": "training",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

"""freqlat.core: what the freqlat apps share.

Data (ImageNet layout, image folders, the embedded scikit-image photographs), a resumable data
order, atomic training checkpoints, EMA, torch.distributed set-up, the submitit launcher and
rank-0 logging.
"""

from freqlat.core.checkpoint import (
    CheckpointInfo,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    prune_checkpoints,
    read_metadata,
    save_checkpoint,
)
from freqlat.core.data import (
    CROPS,
    BadImageError,
    ImageFolderDataset,
    adm_center_crop,
    imagenet_split,
    load_rgb,
    resize_center_crop,
)
from freqlat.core.distributed import (
    DistributedContext,
    all_reduce_mean,
    barrier,
    broadcast_from_main,
    cleanup,
    detect_placement,
    get_rank,
    get_world_size,
    init_distributed,
    is_main,
    seed_everything,
)
from freqlat.core.ema import EMA
from freqlat.core.embedded import EmbeddedPhotos, open_dataset
from freqlat.core.launcher import LaunchOptions, PreemptionGuard, launch, make_executor
from freqlat.core.log import MetricWriter, progress, setup_logging
from freqlat.core.sampler import ResumableLoader, ResumableSampler

__all__ = [
    "CROPS",
    "EMA",
    "BadImageError",
    "CheckpointInfo",
    "DistributedContext",
    "EmbeddedPhotos",
    "ImageFolderDataset",
    "LaunchOptions",
    "MetricWriter",
    "PreemptionGuard",
    "ResumableLoader",
    "ResumableSampler",
    "adm_center_crop",
    "all_reduce_mean",
    "barrier",
    "broadcast_from_main",
    "cleanup",
    "detect_placement",
    "get_rank",
    "get_world_size",
    "imagenet_split",
    "init_distributed",
    "is_main",
    "latest_checkpoint",
    "launch",
    "list_checkpoints",
    "load_checkpoint",
    "load_rgb",
    "make_executor",
    "open_dataset",
    "progress",
    "prune_checkpoints",
    "read_metadata",
    "resize_center_crop",
    "save_checkpoint",
    "seed_everything",
    "setup_logging",
]

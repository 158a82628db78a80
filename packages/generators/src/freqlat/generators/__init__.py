"""freqlat.generators: latent generators for freqlat tokenizers.

Build a preset with :func:`create_generator`, save and load with ``save_pretrained`` /
:func:`from_pretrained`, import released weights with :func:`from_official`.
"""

from freqlat.generators import ldm_official  # noqa: F401  (registers the LDM release)
from freqlat.generators.base import Generator
from freqlat.generators.ddpm import (
    DDPMObjective,
    DDPMSchedule,
    DDPMScheduleConfig,
    ddim_timesteps,
    per_sample_normal,
    sample_ddim,
    sample_ddpm,
)
from freqlat.generators.flow import (
    FlowMatchingObjective,
    flow_matching_loss,
    flow_timesteps,
    guided_velocity,
    sample_flow,
    seeded_noise,
    shift_timesteps,
)
from freqlat.generators.latent_cache import (
    CacheManifest,
    LatentCache,
    LatentDataset,
    posterior_seed,
    split_tokens,
    weights_sha256,
)
from freqlat.generators.latent_space import LatentSpace
from freqlat.generators.ldm_unet import LDMConfig, LDMUNet
from freqlat.generators.lightningdit import LightningDiT, LightningDiTConfig
from freqlat.generators.lightningdit_official import load_official_latent_stats
from freqlat.generators.objectives import TrainingObjective, training_objective
from freqlat.generators.registry import (
    create_generator,
    from_official,
    list_generators,
    preset_config,
)
from freqlat.generators.var import VAR, VARConfig
from freqlat.generators.var_official import VAR_CHECKPOINTS
from freqlat.generators.var_training import (
    NextScaleObjective,
    VARTrainingRecipe,
    var_training_recipe,
)

from_pretrained = Generator.from_pretrained

__all__ = [
    "VAR",
    "VAR_CHECKPOINTS",
    "CacheManifest",
    "DDPMObjective",
    "DDPMSchedule",
    "DDPMScheduleConfig",
    "FlowMatchingObjective",
    "Generator",
    "LDMConfig",
    "LDMUNet",
    "LatentCache",
    "LatentDataset",
    "LatentSpace",
    "LightningDiT",
    "LightningDiTConfig",
    "NextScaleObjective",
    "TrainingObjective",
    "VARConfig",
    "VARTrainingRecipe",
    "create_generator",
    "ddim_timesteps",
    "flow_matching_loss",
    "flow_timesteps",
    "from_official",
    "from_pretrained",
    "guided_velocity",
    "list_generators",
    "load_official_latent_stats",
    "per_sample_normal",
    "posterior_seed",
    "preset_config",
    "sample_ddim",
    "sample_ddpm",
    "sample_flow",
    "seeded_noise",
    "shift_timesteps",
    "split_tokens",
    "training_objective",
    "var_training_recipe",
    "weights_sha256",
]

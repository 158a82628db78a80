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
from freqlat.generators.ldm_unet import LDMConfig, LDMUNet
from freqlat.generators.registry import (
    create_generator,
    from_official,
    list_generators,
    preset_config,
)

from_pretrained = Generator.from_pretrained

__all__ = [
    "DDPMObjective",
    "DDPMSchedule",
    "DDPMScheduleConfig",
    "Generator",
    "LDMConfig",
    "LDMUNet",
    "create_generator",
    "ddim_timesteps",
    "from_official",
    "from_pretrained",
    "list_generators",
    "per_sample_normal",
    "preset_config",
    "sample_ddim",
    "sample_ddpm",
]

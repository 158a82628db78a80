"""freqlat.generators: latent generators for freqlat tokenizers.

Build a preset with :func:`create_generator`, save and load with ``save_pretrained`` /
:func:`from_pretrained`, import released weights with :func:`from_official`.
"""

from freqlat.generators.base import Generator
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
    "Generator",
    "NextScaleObjective",
    "VARConfig",
    "VARTrainingRecipe",
    "create_generator",
    "from_official",
    "from_pretrained",
    "list_generators",
    "preset_config",
    "var_training_recipe",
]

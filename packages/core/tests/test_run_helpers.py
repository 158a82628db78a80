"""Helpers the run configs and loops share: range and choice checks, a run's config.json with
changeable launch keys, and image grids."""

from dataclasses import dataclass

import pytest
import torch
from PIL import Image

from freqlat.core import (
    LaunchOptions,
    check_fields,
    config_field,
    save_image_grid,
    write_run_config,
)


@dataclass
class RunConfig:
    """A small run config embedding the launch options."""

    steps: int = config_field(10, help="steps")
    decay: float = config_field(0.5, help="a decay")
    limit: int | None = config_field(None, help="an optional count")
    mode: str = config_field("a", help="a mode", choices=("a", "b"))
    launch: LaunchOptions = config_field(default_factory=LaunchOptions, help="launch")

    def __post_init__(self) -> None:
        check_fields(self, positive=("steps", "limit"), unit_interval=("decay",))


def test_check_fields_names_the_key_and_lets_none_pass():
    RunConfig(limit=None)
    with pytest.raises(ValueError, match="steps must be at least 1, got 0"):
        RunConfig(steps=0)
    with pytest.raises(ValueError, match="limit must be at least 1, got -2"):
        RunConfig(limit=-2)
    with pytest.raises(ValueError, match=r"decay must lie in \[0, 1\], got 1.5"):
        RunConfig(decay=1.5)
    with pytest.raises(ValueError, match=r"mode must be one of \('a', 'b'\), got 'c'"):
        RunConfig(mode="c")
    with pytest.raises(ValueError, match="non_negative_key must be non-negative"):

        @dataclass
        class Other:
            non_negative_key: int = config_field(-1, help="x")

            def __post_init__(self) -> None:
                check_fields(self, non_negative=("non_negative_key",))

        Other()


def test_run_config_json_refuses_other_settings_but_not_other_launch_keys(tmp_path):
    path = write_run_config(tmp_path, RunConfig())
    assert path == tmp_path / "config.json" and path.is_file()
    write_run_config(tmp_path, RunConfig(launch=LaunchOptions(launcher="slurm", gpus_per_node=0)))
    with pytest.raises(ValueError, match=r"holds a different config \(keys \['steps'\]\)"):
        write_run_config(tmp_path, RunConfig(steps=11))


def test_image_grid_is_one_png_of_the_images_in_a_row(tmp_path):
    images = torch.stack([torch.full((3, 4, 4), v) for v in (-1.0, 0.0, 1.0)])
    grid = save_image_grid(tmp_path / "g" / "grid.png", images, nrow=3)
    assert grid.shape == (3, 4 + 2 * 2, 3 * 4 + 4 * 2)
    with Image.open(tmp_path / "g" / "grid.png") as png:
        assert png.size == (20, 8)
        assert png.getpixel((2, 2)) == (0, 0, 0) and png.getpixel((14, 2)) == (255, 255, 255)

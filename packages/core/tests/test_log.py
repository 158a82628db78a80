"""Rank-0 logging: tensorboard scalars and images, progress bars, console set-up."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from freqlat.core.log import MetricWriter, progress, setup_logging


def test_metric_writer_records_scalars_and_images(tmp_path: Path):
    writer = MetricWriter(tmp_path / "tb")
    writer.scalars({"loss": 0.5, "lr": torch.tensor(1e-3)}, step=3)
    writer.image("recon", torch.zeros(3, 8, 8), step=3)
    writer.close()
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("loss")] == [(3, 0.5)]
    assert events.Tags()["images"] == ["recon"]


def test_metric_writer_without_a_directory_does_nothing():
    writer = MetricWriter(None)
    writer.scalars({"loss": 1.0}, step=0)
    writer.close()
    assert writer.writer is None


def test_progress_bar_shows_on_rank_zero_and_can_be_disabled():
    stream = io.StringIO()
    assert list(progress(range(3), file=stream, desc="train")) == [0, 1, 2]
    assert "train" in stream.getvalue() and "3/3" in stream.getvalue()
    assert progress(range(3), disable=True).disable


def test_setup_logging_writes_to_a_file_on_rank_zero(tmp_path: Path):
    logger = setup_logging(tmp_path / "logs" / "run.log")
    logging.getLogger("freqlat.core.test").info("hello from the test")
    for handler in logger.handlers:
        handler.flush()
    text = (tmp_path / "logs" / "run.log").read_text()
    assert "[rank 0] INFO freqlat.core.test: hello from the test" in text
    setup_logging()

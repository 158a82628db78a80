"""Check an ImageNet-layout dataset, and sort a flat ImageNet val folder into class folders.

``check ROOT`` reports, for ``ROOT/train`` and ``ROOT/val`` (the layout freqlat.core reads:
``<split>/<wnid>/*.JPEG``): whether each split is present, its number of class folders and
images, empty class folders, files that are not images, loose files beside the class folders,
classes found in one split only, and with ``--verify`` every file that cannot be decoded
(each image is fully decoded; ``--workers N`` decodes in N processes). The exit status is 1
when the layout has a problem.

``sort-val VAL_DIR --labels FILE`` moves each image of a flat val folder into
``VAL_DIR/<wnid>/``. Label files understood:

- ``LOC_val_solution.csv`` (Kaggle ImageNet object localisation challenge): a header
  ``ImageId,PredictionString``, then ``ILSVRC2012_val_00000001,n01751748 x y x y ...``; the
  first word of PredictionString is the class. Images are matched by file name without suffix.
- a text file of ``filename wnid`` lines (whitespace or comma separated); the file name may
  be given with or without its suffix.
- a text file with one wnid per line, for the images in sorted file name order (the line
  count must equal the image count).

The official devkit's ``ILSVRC2012_validation_ground_truth.txt`` holds integer ILSVRC ids, not
wnids, and is refused: convert it with the devkit's ``meta.mat`` first. Nothing is overwritten
(an existing destination stops the whole run before any move), images without a label stay
where they are and are listed, and ``--dry-run`` prints the plan without moving anything.

    uv run --all-packages python tools/prepare_dataset.py check /data/imagenet [--verify --workers 8]
    uv run --all-packages python tools/prepare_dataset.py sort-val /data/imagenet/val --labels LOC_val_solution.csv [--dry-run]
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from freqlat.core import BadImageError, load_rgb
from freqlat.core.data import IMAGE_EXTENSIONS

SPLITS = ("train", "val")
CLASS_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
WNID = re.compile(r"^n\d{8}$")
MAX_LISTED = 10


def is_image(path: Path) -> bool:
    """Whether freqlat's folder datasets treat ``path`` as an image (by its suffix)."""
    return not path.name.startswith(".") and path.name.lower().endswith(IMAGE_EXTENSIONS)


@dataclass
class SplitReport:
    """What one split folder holds."""

    name: str
    present: bool
    classes: list[str] = field(default_factory=list)
    num_images: int = 0
    empty_classes: list[str] = field(default_factory=list)
    non_image_files: list[Path] = field(default_factory=list)
    loose_files: list[Path] = field(default_factory=list)
    bad_images: list[str] = field(default_factory=list)
    verified: bool = False

    @property
    def ok(self) -> bool:
        """Present, with images in every class folder, nothing loose and nothing undecodable."""
        return (
            self.present
            and self.num_images > 0
            and not self.empty_classes
            and not self.loose_files
            and not self.bad_images
        )


@dataclass
class LayoutReport:
    """The ImageNet layout check of a dataset root."""

    root: Path
    splits: dict[str, SplitReport]
    only_in_train: list[str]
    only_in_val: list[str]

    @property
    def ok(self) -> bool:
        """Both splits fine and the same classes in both."""
        return (
            all(split.ok for split in self.splits.values())
            and not self.only_in_train
            and not self.only_in_val
        )


def decode_error(path: str) -> str | None:
    """Why the image at ``path`` cannot be decoded, or None if it decodes fully."""
    try:
        load_rgb(path)
    except (BadImageError, FileNotFoundError) as exc:
        return str(exc)
    return None


def check_split(directory: Path, verify: bool = False, workers: int = 1) -> SplitReport:
    """Inspect one split folder: class folders, image counts, stray files, undecodable images.

    With ``verify``, every image is decoded, by ``workers`` processes when more than one.
    """
    report = SplitReport(directory.name, directory.is_dir(), verified=verify)
    if not report.present:
        return report
    image_paths: list[str] = []
    for entry in sorted(directory.iterdir()):
        if entry.name.startswith("."):
            continue
        if not entry.is_dir():
            report.loose_files.append(entry)
            continue
        report.classes.append(entry.name)
        images = 0
        for current, subdirs, files in os.walk(entry, followlinks=True):
            subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
            for name in sorted(files):
                path = Path(current) / name
                if is_image(path):
                    images += 1
                    image_paths.append(str(path))
                elif not name.startswith("."):
                    report.non_image_files.append(path)
        report.num_images += images
        if images == 0:
            report.empty_classes.append(entry.name)
    if verify:
        if workers > 1:
            with ProcessPoolExecutor(workers) as pool:
                errors = list(pool.map(decode_error, image_paths, chunksize=256))
        else:
            errors = [decode_error(path) for path in image_paths]
        report.bad_images = [error for error in errors if error is not None]
    return report


def check_layout(
    root: str | os.PathLike[str], verify: bool = False, workers: int = 1
) -> LayoutReport:
    """Check ``root/train`` and ``root/val``; a missing root is a FileNotFoundError."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset root {root} does not exist or is not a directory")
    splits = {name: check_split(root / name, verify, workers) for name in SPLITS}
    train, val = set(splits["train"].classes), set(splits["val"].classes)
    both_present = splits["train"].present and splits["val"].present
    return LayoutReport(
        root,
        splits,
        sorted(train - val) if both_present else [],
        sorted(val - train) if both_present else [],
    )


def _listing(items: Sequence[object]) -> str:
    shown = ", ".join(str(item) for item in items[:MAX_LISTED])
    more = f" ... (+{len(items) - MAX_LISTED} more)" if len(items) > MAX_LISTED else ""
    return f"{len(items)}: {shown}{more}"


def format_layout(report: LayoutReport) -> str:
    """The layout report as text, one fact per line."""
    lines = [f"dataset root: {report.root}"]
    for split in report.splits.values():
        if not split.present:
            lines.append(f"{split.name}: MISSING ({report.root / split.name})")
            continue
        lines.append(f"{split.name}: {len(split.classes)} classes, {split.num_images} images")
        problems = {
            "empty class folders": split.empty_classes,
            "loose files beside the class folders": split.loose_files,
            "non-image files": split.non_image_files,
            "undecodable images": split.bad_images,
        }
        for what, items in problems.items():
            if items:
                lines.append(f"  {what} {_listing(items)}")
        if not split.verified:
            lines.append("  images not decoded (use --verify)")
    if report.only_in_train:
        lines.append(f"classes only in train {_listing(report.only_in_train)}")
    if report.only_in_val:
        lines.append(f"classes only in val {_listing(report.only_in_val)}")
    lines.append("layout OK" if report.ok else "layout has PROBLEMS (see above)")
    return "\n".join(lines)


def _check_class_name(name: str, where: str) -> str:
    if not CLASS_NAME.match(name):
        raise ValueError(f"{where}: {name!r} is not a usable class folder name")
    return name


def parse_val_labels(
    labels_file: str | os.PathLike[str], images: Sequence[Path]
) -> tuple[dict[str, str], list[str]]:
    """Read any supported label file: ``({image file name: class}, labelled names with no image)``.

    ``images`` are the flat val folder's images (needed for the one-wnid-per-line format, which
    follows their sorted file names). Only images that have a label appear in the mapping.
    """
    path = Path(labels_file)
    if not path.is_file():
        raise FileNotFoundError(f"label file {path} not found")
    text = path.read_text(encoding="utf-8-sig")
    rows = [line.strip() for line in text.splitlines() if line.strip()]
    if not rows:
        raise ValueError(f"label file {path} is empty")
    by_stem: dict[str, str] = {}
    if rows[0].replace(" ", "").lower().startswith("imageid,predictionstring"):
        for row in csv.DictReader(rows):
            words = (row.get("PredictionString") or "").split()
            if not words:
                raise ValueError(f"{path}: image {row.get('ImageId')!r} has no PredictionString")
            by_stem[row["ImageId"]] = _check_class_name(words[0], str(path))
    else:
        split_rows = [re.split(r"[\s,]+", row) for row in rows]
        widths = {len(words) for words in split_rows}
        if widths == {1}:
            if all(words[0].isdigit() for words in split_rows):
                raise ValueError(
                    f"{path} holds integer class ids (the devkit's ground truth), not class "
                    "names; convert it to wnids with the devkit's meta.mat first"
                )
            ordered = sorted(images, key=lambda p: p.name)
            if len(ordered) != len(split_rows):
                raise ValueError(
                    f"{path} has {len(split_rows)} labels (one per line) but the folder has "
                    f"{len(ordered)} images; the counts must match for this format"
                )
            return {
                image.name: _check_class_name(words[0], str(path))
                for image, words in zip(ordered, split_rows, strict=True)
            }, []
        if widths != {2}:
            raise ValueError(
                f"{path}: expected 'filename wnid' lines, a wnid per line, or "
                "LOC_val_solution.csv, got lines of {sorted(widths)} fields"
            )
        for file_name, label in split_rows:
            by_stem[Path(file_name).stem] = _check_class_name(label, str(path))
    return {image.name: by_stem[image.stem] for image in images if image.stem in by_stem}, sorted(
        set(by_stem) - {image.stem for image in images}
    )


@dataclass
class SortPlan:
    """What sort-val will do: the moves, the images left in place, the labels with no image."""

    moves: list[tuple[Path, Path]]
    unlabelled: list[Path]
    unused_labels: list[str]


def plan_val_sort(val_dir: str | os.PathLike[str], labels_file: str | os.PathLike[str]) -> SortPlan:
    """Plan the moves of the flat images in ``val_dir`` into class folders.

    Raises FileExistsError if any destination already exists (nothing has moved then).
    """
    val_dir = Path(val_dir)
    if not val_dir.is_dir():
        raise FileNotFoundError(f"val folder {val_dir} does not exist or is not a directory")
    images = sorted(p for p in val_dir.iterdir() if p.is_file() and is_image(p))
    labels, unused = parse_val_labels(labels_file, images)
    moves, unlabelled = [], []
    for image in images:
        if image.name in labels:
            moves.append((image, val_dir / labels[image.name] / image.name))
        else:
            unlabelled.append(image)
    clashes = [str(dst) for _, dst in moves if dst.exists()]
    if clashes:
        raise FileExistsError(f"refusing to overwrite {_listing(clashes)}; nothing was moved")
    return SortPlan(moves, unlabelled, unused)


def apply_sort(plan: SortPlan) -> int:
    """Carry out the moves (renames within the folder); returns the number of files moved."""
    moved = 0
    for src, dst in plan.moves:
        dst.parent.mkdir(exist_ok=True)
        if dst.exists():
            raise FileExistsError(f"refusing to overwrite {dst} (moved {moved} files before it)")
        os.rename(src, dst)
        moved += 1
    return moved


def format_plan(plan: SortPlan) -> str:
    """Summary of a sort plan."""
    classes = {dst.parent.name for _, dst in plan.moves}
    lines = [f"{len(plan.moves)} images into {len(classes)} class folders"]
    if plan.unlabelled:
        lines.append(f"images without a label, left in place {_listing(plan.unlabelled)}")
    if plan.unused_labels:
        lines.append(f"labels with no image in the folder {_listing(plan.unused_labels)}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="report the ImageNet layout of ROOT")
    check.add_argument("root", type=Path)
    check.add_argument("--verify", action="store_true", help="decode every image")
    check.add_argument("--workers", type=int, default=1, help="processes decoding for --verify")
    sort = commands.add_parser("sort-val", help="sort a flat val folder into class folders")
    sort.add_argument("val_dir", type=Path)
    sort.add_argument("--labels", type=Path, required=True, help="label file (see above)")
    sort.add_argument("--dry-run", action="store_true", help="print the plan, move nothing")
    args = parser.parse_args(argv)
    try:
        if args.command == "check":
            report = check_layout(args.root, verify=args.verify, workers=args.workers)
            print(format_layout(report))
            return 0 if report.ok else 1
        plan = plan_val_sort(args.val_dir, args.labels)
        print(format_plan(plan))
        if args.dry_run:
            for src, dst in plan.moves[:MAX_LISTED]:
                print(f"would move {src} -> {dst}")
            print("dry run: nothing moved")
        else:
            print(f"moved {apply_sort(plan)} files")
    except (FileNotFoundError, FileExistsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

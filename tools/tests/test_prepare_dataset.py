"""tools/prepare_dataset.py: the layout report, and sorting val without losing a file."""

from pathlib import Path

import pytest


@pytest.fixture
def tool(load_tool):
    return load_tool("prepare_dataset")


def _files_below(root: Path) -> set[str]:
    return {p.name for p in root.rglob("*") if p.is_file()}


def test_check_reports_counts_and_every_kind_of_problem(tool, tmp_path, write_jpegs):
    root = tmp_path / "imagenet"
    write_jpegs(root / "train" / "n01440764", 3)
    write_jpegs(root / "train" / "n01443537", 2)
    (root / "train" / "n01443537" / "notes.txt").write_text("not an image")
    (root / "train" / "n09999999").mkdir()
    write_jpegs(root / "val" / "n01440764", 2)
    (root / "val" / "n01440764" / "img_0000.JPEG").write_bytes(b"\xff\xd8 truncated")
    (root / "val" / "stray.JPEG").write_bytes(b"")

    report = tool.check_layout(root, verify=True)
    assert tool.check_layout(root, verify=True, workers=2).splits["val"].bad_images == (
        report.splits["val"].bad_images
    )
    train, val = report.splits["train"], report.splits["val"]
    assert train.classes == ["n01440764", "n01443537", "n09999999"]
    assert train.num_images == 5
    assert train.empty_classes == ["n09999999"]
    assert [p.name for p in train.non_image_files] == ["notes.txt"]
    assert val.num_images == 2
    assert [p.name for p in val.loose_files] == ["stray.JPEG"]
    assert len(val.bad_images) == 1 and "img_0000.JPEG" in val.bad_images[0]
    assert report.only_in_train == ["n01443537", "n09999999"]
    assert not report.ok
    text = tool.format_layout(report)
    assert "train: 3 classes, 5 images" in text and "layout has PROBLEMS" in text


def test_a_clean_layout_passes_and_a_missing_split_fails(tool, tmp_path, write_jpegs, capsys):
    root = tmp_path / "imagenet"
    for split in ("train", "val"):
        write_jpegs(root / split / "n01440764", 2)
    assert tool.main(["check", str(root), "--verify", "--workers", "2"]) == 0
    assert "layout OK" in capsys.readouterr().out
    for path in (root / "val" / "n01440764").iterdir():
        path.unlink()
    (root / "val" / "n01440764").rmdir()
    (root / "val").rmdir()
    assert tool.main(["check", str(root)]) == 1
    assert "val: MISSING" in capsys.readouterr().out
    assert tool.main(["check", str(tmp_path / "nowhere")]) == 2


def test_sort_val_from_loc_val_solution_csv(tool, tmp_path, write_jpegs, capsys):
    val = tmp_path / "val"
    write_jpegs(val, 4, prefix="ILSVRC2012_val")
    (val / "readme.txt").write_text("left alone")
    labels = tmp_path / "LOC_val_solution.csv"
    labels.write_text(
        "\ufeffImageId,PredictionString\n"  # with the byte-order mark some exports add
        "ILSVRC2012_val_0000,n01751748 10 20 30 40 n01751748 1 2 3 4\n"
        "ILSVRC2012_val_0001,n09193705 5 6 7 8\n"
        "ILSVRC2012_val_0002,n01751748 1 1 2 2\n"
        "ILSVRC2012_val_9999,n01440764 1 1 2 2\n"
    )
    before = _files_below(val)
    assert tool.main(["sort-val", str(val), "--labels", str(labels)]) == 0
    out = capsys.readouterr().out
    assert "3 images into 2 class folders" in out and "moved 3 files" in out
    assert "ILSVRC2012_val_0003.JPEG" in out  # unlabelled, left in place
    assert "ILSVRC2012_val_9999" in out  # label without an image
    assert sorted(p.name for p in (val / "n01751748").iterdir()) == [
        "ILSVRC2012_val_0000.JPEG",
        "ILSVRC2012_val_0002.JPEG",
    ]
    assert (val / "n09193705" / "ILSVRC2012_val_0001.JPEG").is_file()
    assert (val / "ILSVRC2012_val_0003.JPEG").is_file()
    assert _files_below(val) == before


def test_sort_val_from_filename_wnid_lines_and_from_one_wnid_per_line(tool, tmp_path, write_jpegs):
    pairs_dir, ordered_dir = tmp_path / "a" / "val", tmp_path / "b" / "val"
    write_jpegs(pairs_dir, 3)
    write_jpegs(ordered_dir, 3)
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("img_0002.JPEG n02\nimg_0000 n01\nimg_0001.JPEG,n01\n")
    ordered = tmp_path / "ordered.txt"
    ordered.write_text("n07\nn08\nn07\n")
    tool.apply_sort(tool.plan_val_sort(pairs_dir, pairs))
    tool.apply_sort(tool.plan_val_sort(ordered_dir, ordered))
    assert sorted(p.name for p in (pairs_dir / "n01").iterdir()) == [
        "img_0000.JPEG",
        "img_0001.JPEG",
    ]
    assert [p.name for p in (pairs_dir / "n02").iterdir()] == ["img_0002.JPEG"]
    assert sorted(p.name for p in (ordered_dir / "n07").iterdir()) == [
        "img_0000.JPEG",
        "img_0002.JPEG",
    ]
    assert [p.name for p in (ordered_dir / "n08").iterdir()] == ["img_0001.JPEG"]


def test_sort_val_refuses_to_overwrite_and_moves_nothing(tool, tmp_path, write_jpegs, capsys):
    val = tmp_path / "val"
    write_jpegs(val, 2)
    (val / "n01").mkdir()
    (val / "n01" / "img_0001.JPEG").write_bytes(b"already there")
    labels = tmp_path / "labels.txt"
    labels.write_text("img_0000 n01\nimg_0001 n01\n")
    with pytest.raises(FileExistsError, match="nothing was moved"):
        tool.plan_val_sort(val, labels)
    assert tool.main(["sort-val", str(val), "--labels", str(labels)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert (val / "img_0000.JPEG").is_file() and (val / "img_0001.JPEG").is_file()
    assert (val / "n01" / "img_0001.JPEG").read_bytes() == b"already there"


def test_dry_run_moves_nothing(tool, tmp_path, write_jpegs, capsys):
    val = tmp_path / "val"
    write_jpegs(val, 2)
    labels = tmp_path / "labels.txt"
    labels.write_text("n01\nn02\n")
    assert tool.main(["sort-val", str(val), "--labels", str(labels), "--dry-run"]) == 0
    assert "nothing moved" in capsys.readouterr().out
    assert sorted(p.name for p in val.iterdir()) == ["img_0000.JPEG", "img_0001.JPEG"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("65\n970\n", "integer class ids"),
        ("n01\n", "the counts must match"),
        ("a b c\n", "lines of"),
        ("img_0000 ../escape\n", "not a usable class folder name"),
        ("", "is empty"),
    ],
)
def test_unusable_label_files_are_clear_errors(tool, tmp_path, write_jpegs, content, message):
    val = tmp_path / "val"
    write_jpegs(val, 2)
    labels = tmp_path / "labels.txt"
    labels.write_text(content)
    with pytest.raises(ValueError, match=message):
        tool.plan_val_sort(val, labels)
    assert sorted(p.name for p in val.iterdir()) == ["img_0000.JPEG", "img_0001.JPEG"]

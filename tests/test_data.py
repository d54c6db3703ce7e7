import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.io import encode_png

from edgenas.data import DataError, Loader, augment, load_data, split_indices


def make_folder(root: Path, classes=("cat", "dog", "eel"), per_class=6, size=10, seed=0) -> Path:
    g = torch.Generator().manual_seed(seed)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            img = torch.randint(0, 256, (3, size, size), generator=g, dtype=torch.uint8)
            (root / c / f"{i:03d}.png").write_bytes(encode_png(img).numpy().tobytes())
    return root


def test_digits_is_the_offline_default():
    d = load_data("digits")
    assert d.num_classes == 10 and not d.flip
    assert d.train.images.dtype == torch.uint8 and d.train.images.shape[1:] == (3, 8, 8)
    assert len(d.train) + len(d.val) == 1797
    assert abs(len(d.val) - 180) <= 10


def test_split_is_deterministic_stratified_and_disjoint():
    labels = np.repeat(np.arange(4), 25)
    tr, va = split_indices(labels, val_per_class=5, mode="random", seed=3)
    tr2, va2 = split_indices(labels, val_per_class=5, mode="random", seed=3)
    assert np.array_equal(va, va2) and np.array_equal(tr, tr2)
    assert not set(tr) & set(va) and len(tr) + len(va) == 100
    assert np.bincount(labels[va]).tolist() == [5, 5, 5, 5]
    _, last = split_indices(labels, val_per_class=5, mode="last")
    assert last.tolist() == [i for c in range(4) for i in range(c * 25 + 20, c * 25 + 25)]
    with pytest.raises(DataError, match="cannot hold out 30"):
        split_indices(labels, val_per_class=30)


def test_imagefolder_from_folder_and_zip(tmp_path):
    folder = make_folder(tmp_path / "imgs")
    a = load_data(f"imagefolder:{folder}", val_per_class=2, split="last")
    assert a.train.classes == ["cat", "dog", "eel"] and len(a.train) == 12 and len(a.val) == 6
    zpath = tmp_path / "imgs.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for f in sorted(folder.rglob("*.png")):
            zf.write(f, f"train/{f.parent.name}/{f.name}")
    b = load_data(f"imagefolder:{zpath}", val_per_class=2, split="last")
    assert b.train.classes == a.train.classes
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.val.labels, b.val.labels)


def test_mixed_image_sizes_are_resized(tmp_path):
    folder = make_folder(tmp_path / "a", per_class=3, size=10)
    make_folder(tmp_path / "b", classes=("cat",), per_class=1, size=14, seed=1)
    (tmp_path / "b" / "cat" / "000.png").rename(folder / "cat" / "big.png")
    d = load_data(f"imagefolder:{folder}", val_per_class=1)
    assert d.train.images.shape[-2:] == (10, 10)


def test_bad_data_gives_clear_errors(tmp_path):
    with pytest.raises(DataError, match="data path not found"):
        load_data(f"imagefolder:{tmp_path / 'nope'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no images in class folders"):
        load_data(f"imagefolder:{tmp_path / 'empty'}")
    folder = make_folder(tmp_path / "bad")
    (folder / "cat" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(DataError, match="cannot decode image .*broken.jpg"):
        load_data(f"imagefolder:{folder}")
    (folder / "cat" / "broken.jpg").unlink()
    other = make_folder(tmp_path / "val", classes=("cat", "dog", "fox"))
    with pytest.raises(DataError, match="class folders differ"):
        load_data(f"imagefolder:{folder}", val_spec=f"imagefolder:{other}")
    with pytest.raises(DataError, match="unknown --data 'mnist'"):
        load_data("mnist")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(DataError, match="neither a folder nor a .zip"):
        load_data(f"imagefolder:{tmp_path / 'x.txt'}")


def test_augment_is_seeded_and_resizes():
    imgs = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    mean, std = (0.5,) * 3, (0.25,) * 3
    a = augment(imgs, 16, mean, std, generator=torch.Generator().manual_seed(1))
    b = augment(imgs, 16, mean, std, generator=torch.Generator().manual_seed(1))
    c = augment(imgs, 16, mean, std, generator=torch.Generator().manual_seed(2))
    assert a.shape == (4, 3, 16, 16) and torch.equal(a, b) and not torch.equal(a, c)
    plain = augment(imgs, 8, mean, std)
    assert torch.allclose(plain, (imgs.float() / 255 - 0.5) / 0.25)


def test_loader_order_depends_on_seed_and_epoch_and_shards_ranks():
    d = load_data("digits")
    one = [y for _, y in Loader(d.train, 100, shuffle=True, seed=1).epoch(0)]
    again = [y for _, y in Loader(d.train, 100, shuffle=True, seed=1).epoch(0)]
    other = [y for _, y in Loader(d.train, 100, shuffle=True, seed=1).epoch(1)]
    assert all(torch.equal(a, b) for a, b in zip(one, again))
    assert not torch.equal(one[0], other[0])
    r0 = Loader(d.train, 50, shuffle=True, seed=1, rank=0, world=2, drop_last=True)
    r1 = Loader(d.train, 50, shuffle=True, seed=1, rank=1, world=2, drop_last=True)
    x0 = torch.cat([x.flatten(1) for x, _ in r0.epoch(0)])
    x1 = torch.cat([x.flatten(1) for x, _ in r1.epoch(0)])
    assert len(r0) == len(r1) and x0.shape == x1.shape and not torch.equal(x0, x1)

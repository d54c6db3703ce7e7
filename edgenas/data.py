"""Datasets as in-memory uint8 tensors, deterministic splits, and batched augmentation.

Every ``--data`` kind ends up as ``ImageData`` (uint8 NCHW images + int64 labels + class names):
small enough for CIFAR-scale data to sit whole in GPU memory, where augmentation runs batched
(one ``affine_grid``/``grid_sample`` does per-image random translation, flip and the resize to the
step's resolution), so data loading never starves the GPU.  Decoding uses torchvision.

``--data`` forms: ``digits`` (scikit-learn's bundled 8x8 digits: offline default), ``cifar10`` /
``cifar100`` (torchvision, downloaded to a cache), ``imagefolder:PATH`` (a folder or a .zip of
class folders), ``imagenet:PATH`` (PATH/train/CLASS/*, validation from PATH/val/CLASS/*).

Folders and zips too large for memory (``--memory-budget``, or ``--stream``) stay on disk as
``ImageFiles``: a ``DataLoader`` with workers decodes each batch, in the same seeded order as the
in-memory path, and the same GPU-side augmentation follows (``imagenet:`` training images also
take a seeded random-resized crop as they are read).  Either way images are decoded at a
bounded working size (``--image-size``; training derives it from the space's largest resolution),
so a folder of large photos does not explode memory.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .errors import DataError
from .pretrained import data_record, sample_files

__all__ = ["DataError", "DataSplit", "ImageData", "ImageFiles", "Loader", "augment", "batches", "checkpoint_data", "data_digests", "fingerprint",
           "load_data", "locate_checkpoint_data", "materialize", "same_data", "split_indices", "working_size"]

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
CACHE = Path(os.environ.get("EDGENAS_CACHE", Path.home() / ".cache" / "edgenas"))


@dataclass
class ImageData:
    images: torch.Tensor  # uint8 (N, 3, H, W)
    labels: torch.Tensor  # int64 (N,)
    classes: list[str]
    files_fingerprint: str | None = None  # of the files decoded into it, whole (see ``data_digests``)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, idx: np.ndarray | torch.Tensor) -> ImageData:
        idx = torch.as_tensor(np.asarray(idx), dtype=torch.long, device=self.images.device)
        return ImageData(self.images[idx], self.labels[idx], self.classes)

    def to(self, device: str | torch.device) -> ImageData:
        return ImageData(self.images.to(device), self.labels.to(device), self.classes, self.files_fingerprint)


@dataclass
class DataSplit:
    train: ImageData | ImageFiles
    val: ImageData | ImageFiles
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    flip: bool  # horizontal flips are label-preserving (not for digits)
    name: str
    info: dict = field(default_factory=dict)  # how to rebuild this split: stored in checkpoints and models
    own: bool = True  # val is the held-out split of the training data (not other data scored whole)

    @property
    def num_classes(self) -> int:
        return len(self.train.classes)


def split_indices(labels: np.ndarray, *, val_fraction: float = 0.1, val_per_class: int | None = None,
                  mode: str = "random", seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stratified train/val indices: per class, the last ``n`` (mode ``last``) or ``n`` seeded random."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        n_val = val_per_class if val_per_class is not None else int(round(len(idx) * val_fraction))
        if n_val >= len(idx):
            raise DataError(f"class {c} has {len(idx)} images; cannot hold out {n_val} for validation")
        if mode == "random":
            idx = rng.permutation(idx)
        elif mode != "last":
            raise DataError(f"unknown split mode '{mode}' (random or last)")
        train.append(idx[: len(idx) - n_val])
        val.append(idx[len(idx) - n_val :])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def _decode(data: bytes, name: str) -> torch.Tensor:
    from torchvision.io import ImageReadMode, decode_image

    try:
        return decode_image(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB)
    except Exception:
        raise DataError(f"cannot decode image {name}: corrupt or not an image") from None


def working_size(resolution: int) -> int:
    """Decode-time size for a space whose largest resolution is ``resolution``: room for the
    random translation and crops of augmentation (shorter side ~1.15x), nothing more."""
    return int(np.ceil(resolution * 1.15))


def _fit(img: torch.Tensor, size: int | None, exact: bool = False) -> torch.Tensor:
    """Shorter side to ``size`` and a centre square crop: always with ``exact`` (streamed batches
    must stack), else only for images larger than ``size`` (memory is bounded, nothing is upscaled)."""
    h, w = img.shape[1:]
    if size is None or (not exact and min(h, w) <= size) or (h == w == size):
        return img
    if min(h, w) != size:
        from torchvision.transforms.v2.functional import resize

        img = resize(img, [size], antialias=True)
    h, w = img.shape[1:]
    top, left = (h - size) // 2, (w - size) // 2
    return img[:, top : top + size, left : left + size].contiguous()


def _stack(images: list[torch.Tensor], names: list[str]) -> torch.Tensor:
    sizes = Counter(tuple(im.shape[1:]) for im in images)
    if len(sizes) > 1:  # resize to the most common size so the set stacks into one tensor
        from torchvision.transforms.v2.functional import resize

        size = list(sizes.most_common(1)[0][0])
        images = [im if list(im.shape[1:]) == size else resize(im, size, antialias=True) for im in images]
    return torch.stack(images)


def _entries(path: Path) -> list[tuple[str, str]]:
    """(class name, file) pairs of a folder or a .zip of class folders, in sorted order; files are
    zip member names, or paths relative to the folder."""
    if not path.exists():
        raise DataError(f"data path not found: {path}")
    if path.is_file():
        if not zipfile.is_zipfile(path):
            raise DataError(f"{path} is neither a folder nor a .zip of class folders")
        with zipfile.ZipFile(path) as zf:
            entries = []
            for name in sorted(zf.namelist()):
                parts = name.split("/")
                if name.lower().endswith(IMAGE_EXTS) and len(parts) >= 2 and not parts[-1].startswith("."):
                    entries.append((parts[-2], name))
    else:
        entries = [(d.name, f"{d.name}/{f.name}") for d in sorted(path.iterdir()) if d.is_dir() for f in sorted(d.iterdir())
                   if f.suffix.lower() in IMAGE_EXTS]
    if not entries:
        raise DataError(f"{path} holds no images in class folders (expected CLASS/IMAGE.jpg)")
    return entries


_ZIPS: dict[tuple[int, str], zipfile.ZipFile] = {}


def _read(source: Path, file: str) -> bytes:
    if source.is_file():  # a zip: one handle per process, so each DataLoader worker opens its own
        key = (os.getpid(), str(source))
        if key not in _ZIPS:
            _ZIPS[key] = zipfile.ZipFile(source)
        return _ZIPS[key].read(file)
    return (source / file).read_bytes()


@dataclass
class ImageFiles:
    """Images left on disk (a folder or a .zip of class folders), decoded when a batch is read:
    the streaming path for data larger than memory.  Every image is read at ``size`` x ``size``."""

    source: Path
    files: list[str]
    labels: torch.Tensor
    classes: list[str]
    size: int
    random_crop: bool = False  # training reads take ImageNet's random-resized crop instead of the centre

    def __len__(self) -> int:
        return len(self.files)

    def subset(self, idx: np.ndarray | torch.Tensor) -> ImageFiles:
        idx = np.asarray(idx, dtype=np.int64)
        return ImageFiles(self.source, [self.files[i] for i in idx], self.labels[torch.from_numpy(idx)], self.classes, self.size,
                          self.random_crop)

    def to(self, device: str | torch.device) -> ImageFiles:
        return self  # stays on disk; batches move to the device as they are read

    def read(self, i: int, rng: np.random.Generator | None = None) -> torch.Tensor:
        """Image ``i`` at size x size: its centre, or with ``random_crop`` and a generator a random-resized crop."""
        img = _decode(_read(self.source, self.files[i]), self.files[i])
        return _random_resized_crop(img, self.size, rng) if self.random_crop and rng is not None else _fit(img, self.size, exact=True)


def _random_resized_crop(img: torch.Tensor, size: int, rng: np.random.Generator, scale: tuple[float, float] = (0.08, 1.0),
                         ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> torch.Tensor:
    """torchvision's RandomResizedCrop (8-100% of the area, aspect 3/4-4/3, 10 tries, else the
    centre within those aspects), drawn from ``rng`` instead of the global RNG."""
    from torchvision.transforms.v2.functional import resize

    h, w = img.shape[1:]
    for _ in range(10):
        area = h * w * rng.uniform(*scale)
        aspect = float(np.exp(rng.uniform(np.log(ratio[0]), np.log(ratio[1]))))
        cw, ch = int(round(np.sqrt(area * aspect))), int(round(np.sqrt(area / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            break
    else:
        cw, ch = (w, int(round(w / ratio[0]))) if w / h < ratio[0] else (int(round(h * ratio[1])), h) if w / h > ratio[1] else (w, h)
        top, left = (h - ch) // 2, (w - cw) // 2
    return resize(img[:, top : top + ch, left : left + cw], [size, size], antialias=True).contiguous()


class _Reader(torch.utils.data.Dataset):
    """Training reads draw their random crop from (seed, epoch, image): the same wherever and
    whenever that image is read (any rank, worker or resume)."""

    def __init__(self, files: ImageFiles, key: tuple[int, int] | None = None):
        self.files, self.key = files, key

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([*self.key, i]) if self.key is not None else None
        return self.files.read(i, rng), self.files.labels[i]


def _collate(items: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.stack([x for x, _ in items]), torch.stack([y for _, y in items])


def materialize(data: ImageData | ImageFiles, workers: int = 0) -> ImageData:
    """Decoded into memory (for small subsets of streamed data: BN and int8 calibration images)."""
    if isinstance(data, ImageData):
        return data
    parts = list(batches(data, 256, workers))
    return ImageData(torch.cat([x for x, _ in parts]), torch.cat([y for _, y in parts]), data.classes)


def batches(data: ImageData | ImageFiles, batch_size: int, workers: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """uint8 images and labels in order, ``batch_size`` at a time (streamed data is decoded per batch)."""
    if isinstance(data, ImageData):
        for i in range(0, len(data), batch_size):
            yield data.images[i : i + batch_size], data.labels[i : i + batch_size]
    else:
        yield from Loader(data, batch_size, shuffle=False, workers=workers).epoch(0)


def _image_folder(path: Path, size: int | None = None, stream: bool | None = None, memory_budget: float | None = None
                  ) -> ImageData | ImageFiles:
    entries = _entries(path)
    classes = sorted({c for c, _ in entries})
    index = {c: i for i, c in enumerate(classes)}
    labels = torch.tensor([index[c] for c, _ in entries], dtype=torch.long)
    with contextlib.ExitStack() as stack:  # one zip handle here, closed after (streaming keeps one per worker)
        archive = stack.enter_context(zipfile.ZipFile(path)) if path.is_file() else None

        def read(f: str) -> bytes:
            return archive.read(f) if archive is not None else (path / f).read_bytes()

        files = [f for _, f in entries]
        if stream is None:
            stream = _decoded_bytes(files, read, size) > (memory_budget if memory_budget is not None else default_memory_budget())
        if stream:
            if size is None:
                raise DataError(f"streaming {path} needs a working image size (--image-size); training derives it from the space")
            return ImageFiles(path, files, labels, classes, size)
        return ImageData(_stack([_fit(_decode(read(f), f), size) for f in files], files), labels, classes,
                         _files_digest(classes, _names(files), _file_sizes(path, files), labels))


def _decoded_bytes(files: list[str], read, size: int | None, probe: int = 8) -> float:
    """Memory the decoded set would take, from a few images spread over it at their working size."""
    step = max(1, len(files) // probe)
    shapes = [_fit(_decode(read(f), f), size).shape for f in files[::step][:probe]]
    return len(files) * float(np.mean([np.prod(sh) for sh in shapes]))


def default_memory_budget() -> float:
    """A quarter of this machine's memory: room for the model, activations and the rest."""
    try:
        return 0.25 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 4e9


def _digits() -> ImageData:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(np.clip(d.images * 16, 0, 255).astype(np.uint8))[:, None].expand(-1, 3, -1, -1).contiguous()
    return ImageData(x, torch.from_numpy(d.target.astype(np.int64)), [str(i) for i in range(10)])


def _torchvision(name: str) -> ImageData:
    from torchvision import datasets

    cls = {"cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100}[name]
    root = CACHE / "datasets"
    try:
        ds = cls(root=str(root), train=True, download=True)
    except Exception as exc:
        raise DataError(
            f"cannot load {name} into {root} ({type(exc).__name__}); offline? download it there once, "
            "or use imagefolder:PATH with a folder or .zip of class folders"
        ) from None
    return ImageData(torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous(), torch.tensor(ds.targets), list(ds.classes))


def load_images(spec: str, *, size: int | None = None, stream: bool | None = None, memory_budget: float | None = None
                ) -> tuple[ImageData | ImageFiles, str, bool]:
    """(data, name, flip allowed) for a ``--data`` string; folders and zips stream when asked, or
    when decoded (at ``size``) they would exceed ``memory_budget`` bytes."""
    if spec == "digits":
        return _digits(), "digits", False
    if spec in ("cifar10", "cifar100"):
        return _torchvision(spec), spec, True
    for kind, sub in (("imagefolder:", ""), ("imagenet:", "train")):
        if spec.startswith(kind):
            path = Path(spec.split(":", 1)[1]).expanduser() / sub
            data = _image_folder(path, size, stream, memory_budget)
            if kind == "imagenet:" and isinstance(data, ImageFiles):
                data.random_crop = True  # ImageNet's training augmentation: random-resized crops, as images are read
            return data, f"{kind}{path}", True
    raise DataError(f"unknown --data '{spec}'; use digits, cifar10, cifar100, imagefolder:PATH or imagenet:PATH")


def fingerprint(data: ImageData | ImageFiles) -> str:
    """Digest of the decoded images, labels and class names: the training data is recognised at any
    path and in any container (folder or zip), so its held-out split is rebuilt wherever it lives.
    Streamed data is identified by its class/file names, file sizes and labels instead (it is never
    decoded whole, and a stat per file costs little even for ImageNet)."""
    return data_digests(data)["fingerprint"]


def data_digests(data: ImageData | ImageFiles) -> dict[str, str]:
    """``fingerprint``, and for images read from files ``files_fingerprint`` (class/file names, sizes and
    labels: the same whether they were decoded into memory or streamed).  Whether a folder streams
    depends on the machine's memory, so a supernet trained where it fit in memory must still know its
    images where they stream: ``same_data`` compares either digest."""
    if isinstance(data, ImageFiles):
        sizes, names = _file_sizes(data.source, data.files), _names(data.files)
        facts = [data.classes, names, sizes, data.labels.tolist(), data.size]
        return {"fingerprint": hashlib.sha256(json.dumps(facts).encode()).hexdigest()[:16],
                "files_fingerprint": _files_digest(data.classes, names, sizes, data.labels)}
    h = hashlib.sha256(json.dumps([data.classes, list(data.images.shape)]).encode())
    h.update(data.labels.cpu().contiguous().numpy().tobytes())
    h.update(data.images.cpu().contiguous().numpy().tobytes())
    return {"fingerprint": h.hexdigest()[:16], **({"files_fingerprint": data.files_fingerprint} if data.files_fingerprint else {})}


def _names(files: list[str]) -> list[str]:
    """Each file as its class folder and name: the same under any root, in a folder or a zip."""
    return ["/".join(f.split("/")[-2:]) for f in files]


def _files_digest(classes: list[str], names: list[str], sizes: list[int], labels: torch.Tensor) -> str:
    return hashlib.sha256(json.dumps(["files", classes, names, sizes, labels.tolist()]).encode()).hexdigest()[:16]


def same_data(a: dict, b: dict) -> bool:
    """Whether two data records (``DataSplit.info``, a checkpoint's ``data``) name the same images, by
    either digest; a built-in supernet's record is completed from its model card."""
    a, b = data_record(a), data_record(b)
    return any(a.get(k) and a.get(k) == b.get(k) for k in ("fingerprint", "files_fingerprint"))


def _file_sizes(source: Path, files: list[str]) -> list[int]:
    """Bytes of each file, the same for a folder and a zip of it (a zip member's uncompressed size)."""
    if source.is_file():
        with zipfile.ZipFile(source) as zf:
            sizes = {i.filename: i.file_size for i in zf.infolist()}
        return [sizes[f] for f in files]
    return [(source / f).stat().st_size for f in files]


def load_data(spec: str, *, val_spec: str | None = None, val_fraction: float = 0.1, val_per_class: int | None = None,
              split: str = "random", seed: int = 0, limit: int | None = None, size: int | None = None,
              stream: bool | None = None, memory_budget: float | None = None) -> DataSplit:
    """Load ``spec`` and split it (or take validation data from ``val_spec``; ``imagenet:PATH``
    validates on PATH/val).  ``size``, ``stream`` and ``memory_budget`` (bytes): see ``load_images``."""
    data, name, flip = load_images(spec, size=size, stream=stream, memory_budget=memory_budget)
    if spec.startswith("imagenet:") and not val_spec:
        val_spec = f"imagefolder:{Path(spec.split(':', 1)[1]).expanduser() / 'val'}"
    return _split(data, name, flip, spec, val_spec=val_spec, val_fraction=val_fraction, val_per_class=val_per_class,
                  split=split, seed=seed, limit=limit, size=size, stream=stream, memory_budget=memory_budget)


def _split(data: ImageData | ImageFiles, name: str, flip: bool, spec: str, *, val_spec: str | None, val_fraction: float,
           val_per_class: int | None, split: str, seed: int, limit: int | None, size: int | None = None,
           stream: bool | None = None, memory_budget: float | None = None) -> DataSplit:
    if len(data.classes) < 2:
        raise DataError(f"{name} has {len(data.classes)} class; at least 2 are needed")
    if val_spec:
        val, _, _ = load_images(val_spec, size=size, stream=stream, memory_budget=memory_budget)
        if val.classes != data.classes:
            extra = sorted(set(val.classes) ^ set(data.classes))
            raise DataError(f"class folders differ between {spec} and {val_spec}: {extra[:5]}")
        train = data
    else:
        tr, va = split_indices(data.labels.numpy(), val_fraction=val_fraction, val_per_class=val_per_class, mode=split, seed=seed)
        train, val = data.subset(tr), data.subset(va)
    if limit:
        train = train.subset(np.random.default_rng(seed).permutation(len(train))[:limit])
    # normalisation statistics: every image held in memory; a seeded 2,000 of streamed ones
    sample = train if isinstance(train, ImageData) else materialize(train.subset(np.sort(
        np.random.default_rng(seed).permutation(len(train))[:2000])))
    x = sample.images.float().div_(255)
    m, s = x.mean(dim=(0, 2, 3)).tolist(), x.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist()
    mean, std = (float(m[0]), float(m[1]), float(m[2])), (float(s[0]), float(s[1]), float(s[2]))
    info = {"spec": spec, "val_spec": val_spec, "val_fraction": val_fraction, "val_per_class": val_per_class, "split": split,
            "seed": seed, "classes": list(data.classes), "mean": list(mean), "std": list(std), **data_digests(data)}
    if limit:
        info["limit"] = limit
    if size:
        info["size"] = size
    return DataSplit(train, val, mean, std, flip, name, info)


def locate_checkpoint_data(info: dict | None, spec: str | None = None) -> str | None:
    """What :func:`checkpoint_data` will read (None: a built-in supernet's shipped sample), checked without reading an
    image, so a long job can say before it starts that the data is missing."""
    info = info or {}
    spec = spec or info.get("spec")
    if not spec:
        raise DataError("the checkpoint records no training data; give --data")
    if spec.startswith(("imagefolder:", "imagenet:")) and not Path(spec.split(":", 1)[1]).expanduser().exists():
        if spec != info.get("spec"):
            raise DataError(f"data path not found: {Path(spec.split(':', 1)[1]).expanduser()}")
        if sample_files(info) is None:
            raise DataError(f"the checkpoint was trained on {spec}, which is not on this machine; give --data with the same "
                            "images at their path here")
        return None
    return spec


def checkpoint_data(info: dict | None, spec: str | None = None) -> DataSplit:
    """The data a supernet checkpoint was trained on (``info`` = its ``data`` record), split as in training.

    ``spec`` may name the training data at another path (recognised by its fingerprint: the
    recorded split is rebuilt); other data becomes the evaluation set whole (and the pool BN
    statistics are recalibrated on).  Normalisation always follows the checkpoint.
    """
    info = info or {}
    source = locate_checkpoint_data(info, spec)
    recorded = {"val_spec": info.get("val_spec"), "val_fraction": info.get("val_fraction", 0.1), "val_per_class": info.get("val_per_class"),
                "split": info.get("split", "random"), "seed": info.get("seed", 0), "limit": info.get("limit"), "size": info.get("size")}
    if source is None:  # a built-in supernet without its dataset here: its shipped images
        shipped = sample_files(info)
        assert shipped is not None  # located above
        name, calib_zip, heldout_zip = shipped
        calib, _, flip = load_images(f"imagefolder:{calib_zip}")
        heldout, _, _ = load_images(f"imagefolder:{heldout_zip}")
        return DataSplit(calib, heldout, tuple(info["mean"]), tuple(info["std"]), flip,
                         f"{name}, shipped sample of {len(calib)} training and {len(heldout)} held-out images", dict(info))
    spec = source
    if spec == info.get("spec"):
        data = load_data(spec, **recorded)
    else:
        images, name, flip = load_images(spec, size=info.get("size"))
        if not info.get("val_spec") and same_data(info, data_digests(images)):
            data = _split(images, name, flip, spec, **recorded)  # the training data at another path: the same split
        else:
            data = DataSplit(images, images, (0.5,) * 3, (0.25,) * 3, flip, name, dict(info), own=False)
    if info.get("classes") and data.val.classes != info["classes"]:
        raise DataError(f"{spec} has classes {data.val.classes[:5]}..., the checkpoint was trained on {info['classes'][:5]}...")
    if info.get("mean"):
        data.mean, data.std = tuple(info["mean"]), tuple(info["std"])
    return data


def augment(images: torch.Tensor, resolution: int, mean, std, *, generator: torch.Generator | None = None,
            flip: bool = True, translate: float = 0.125, shard: tuple[int, int] = (0, 1)) -> torch.Tensor:
    """uint8 batch -> normalised float batch at ``resolution``.

    With a ``generator``: per-image random translation (up to ``translate`` of the side, reflected
    borders) and horizontal flip, fused with the resize into one ``grid_sample``.  Without: a plain
    resize (evaluation and BN calibration).  ``shard`` = (rank, world): this batch is that rank's
    interleaved share of the global batch, and gets the draws its images get in one process.
    """
    x = images.float().div_(255)
    B = x.shape[0]
    if generator is not None:
        rank, world = shard
        # the draws and the affine matrices are made on the CPU (the same numbers on any device) and
        # sent pinned: a blocking copy would make the host wait for the GPU's queue to drain each step
        u = torch.rand(B * world, 3, generator=generator)[rank::world]
        t = (u[:, 1:] * 2 - 1) * (2 * translate)  # grid units: the image spans [-1, 1]
        theta = torch.zeros(B, 2, 3)
        theta[:, 0, 0], theta[:, 1, 1], theta[:, :, 2] = torch.where((u[:, 0] < 0.5) & flip, -1.0, 1.0), 1.0, t
        theta = theta.pin_memory().to(x.device, non_blocking=True) if x.is_cuda else theta
        grid = F.affine_grid(theta, [B, 3, resolution, resolution], align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    elif x.shape[-1] != resolution or x.shape[-2] != resolution:
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=True)
    m, s = _channel_stats(tuple(map(float, mean)), tuple(map(float, std)), x.device)
    return (x - m) / s


@functools.lru_cache(maxsize=16)
def _channel_stats(mean: tuple[float, ...], std: tuple[float, ...], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std on ``device``, copied there once (not a blocking copy per batch)."""
    with torch.inference_mode(False):
        stats = torch.tensor([mean, std]).view(2, 1, len(mean), 1, 1).to(device)
    return stats[0], stats[1]


class Loader:
    """Seeded batches of ``ImageData`` (possibly device-resident) or streamed ``ImageFiles``: epoch e's
    order depends on (seed, e) only, so both paths see the same images in the same batches.
    Streamed batches are decoded by ``workers`` DataLoader processes (pinned for a GPU)."""

    def __init__(self, data: ImageData | ImageFiles, batch_size: int, *, shuffle: bool, seed: int = 0, drop_last: bool = False,
                 rank: int = 0, world: int = 1, workers: int = 0, pin_memory: bool = False):
        if len(data) == 0:
            raise DataError("no images to load")
        self.data, self.batch_size, self.shuffle, self.seed, self.drop_last = data, batch_size, shuffle, seed, drop_last
        self.rank, self.world, self.workers, self.pin_memory = rank, world, workers, pin_memory

    def __len__(self) -> int:
        n = len(self.data) // self.world
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.data)
        if self.shuffle:
            order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed * 100_003 + epoch))
        else:
            order = torch.arange(n)
        # interleaved shards, as DistributedSampler: the ranks' batch i together are batch i of one
        # process with world x the batch size, so N processes train as one with the global batch
        order = order[: n // self.world * self.world][self.rank :: self.world]
        if isinstance(self.data, ImageData):  # device-resident data: one copy an epoch, not a blocking one per batch
            order = order.to(self.data.images.device)
        index = order.split(self.batch_size)[: len(self)]
        if isinstance(self.data, ImageFiles):
            from torch.utils.data import DataLoader

            reader = _Reader(self.data, (self.seed, epoch) if self.shuffle else None)
            yield from DataLoader(reader, batch_sampler=[i.tolist() for i in index], num_workers=self.workers,
                                  collate_fn=_collate, pin_memory=self.pin_memory)
            return
        for idx in index:
            yield self.data.images[idx], self.data.labels[idx]

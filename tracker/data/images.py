"""Image files: decoding frames and masks, encoding them, with errors naming the file.

Frames are decoded with Pillow, fully (`Image.load`), so a truncated or corrupt file fails
when it is read instead of yielding a half-grey frame. Written frames are JPEG at
`JPEG_QUALITY` with 4:4:4 chroma (no colour subsampling): textured targets keep their
colour detail. Masks are PNG, 0 = background, 255 = object.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from tracker.data.errors import DatasetError

JPEG_QUALITY = 95
"""Quality of every JPEG frame this package writes (sources already JPEG are copied as-is)."""


def image_size(path: Path) -> tuple[int, int]:
    """(H, W) of an image file from its header alone: cheap enough to check every file up front."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except FileNotFoundError:
        raise DatasetError(path, "file is missing") from None
    except UnidentifiedImageError:
        raise DatasetError(path, "not a readable image (not an image format Pillow recognises)") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise DatasetError(path, f"not a readable image ({error})") from None
    return height, width


def _decode(path: Path) -> Image.Image:
    try:
        image = Image.open(path)
        image.load()
    except FileNotFoundError:
        raise DatasetError(path, "file is missing") from None
    except UnidentifiedImageError:
        raise DatasetError(path, "corrupt or truncated image (not an image format Pillow recognises)") from None
    except (OSError, SyntaxError, ValueError) as error:
        # e.g. "image file is truncated (3 bytes not processed)"
        raise DatasetError(path, f"corrupt or truncated image ({error})") from None
    return image


def read_rgb(path: Path) -> np.ndarray:
    """Decode an image file to HxWx3 uint8 RGB (grey, palette and RGBA images converted)."""
    with _decode(path) as image:
        if image.mode != "RGB":
            image = image.convert("RGB")
        return np.asarray(image, dtype=np.uint8).copy()


def read_mask(path: Path) -> np.ndarray:
    """Decode a mask image to HxW bool: any non-zero value is object.

    Handles what real annotation files contain: 0/255 or 0/1 grey images, palette images
    (non-zero index = object), two-channel grey+alpha images (first channel) and RGB(A)
    colour masks (any non-zero colour channel).
    """
    with _decode(path) as image:
        array = np.asarray(image)
        mode = image.mode
    if mode == "1" or array.ndim == 2:
        return array != 0
    if mode == "LA" or array.shape[2] == 2:
        return array[..., 0] != 0
    return np.any(array[..., :3] != 0, axis=2)


def write_jpeg(path: Path, rgb: np.ndarray, quality: int = JPEG_QUALITY) -> None:
    """Write an HxWx3 uint8 frame as JPEG (4:4:4 chroma)."""
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).save(path, format="JPEG", quality=quality, subsampling=0)


def write_mask_png(path: Path, mask: np.ndarray) -> None:
    """Write an HxW bool mask as an 8-bit PNG, 0 = background, 255 = object (DAVIS style)."""
    Image.fromarray(mask.astype(np.uint8) * 255).save(path, format="PNG")


def frame_masks(frames: list[Path], mask_folder: Path, frame_size: tuple[int, int]) -> list[Path]:
    """The PNG mask of each frame (named like it) in `mask_folder`, each checked to exist and to
    have its frame's size (header only), so a bad dataset fails at load time, naming the file."""
    masks = [mask_folder / f"{frame.stem}.png" for frame in frames]
    for mask, frame in zip(masks, frames):
        if not mask.is_file():
            raise DatasetError(mask, f"mask for frame {frame.name} is missing")
        size = image_size(mask)
        if size != frame_size:
            raise DatasetError(mask, f"mask is {size[1]}x{size[0]} but its frame is {frame_size[1]}x{frame_size[0]}")
    return masks

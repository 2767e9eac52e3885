"""AASIST: raw-waveform spoofing countermeasure with spectro-temporal graph attention.

Our own implementation of the network of Jung et al., "AASIST: Audio Anti-Spoofing using
Integrated Spectro-Temporal Graph Attention Networks" (ICASSP 2022), written from the paper
and checked against the authors' public code (clovaai/aasist, MIT) so that their pretrained
weights load with ``strict=True``: module and parameter names follow their state_dict.

The network, for a batch of raw 16 kHz waveforms of 64,600 samples:

1. A fixed sinc filter bank (70 mel-spaced band-pass filters, 129 taps): its filters are
   computed from the configuration, not learned nor stored.
2. |.|, 3x3 max pooling, batch norm, SELU: a (1, 23, T/3) "spectrogram" of the filter bank.
3. A residual encoder of six blocks (2-D convolutions, max pooling along time only): a
   (C, 23, t) feature map, 23 spectral bins by t time frames.
4. Two graphs read from it: spectral nodes (max over time, plus a learned positional
   embedding) and temporal nodes (max over frequency), each through a graph attention layer
   and a graph pooling that keeps the top-scored nodes.
5. Two parallel branches of heterogeneous graph attention over the union of both graphs, each
   with a learned master node that gathers the whole graph; the branches are merged by an
   element-wise maximum.
6. Readout: max |.| and mean of the temporal and of the spectral nodes, plus the master node,
   then a linear layer to two logits (column 0 spoof, column 1 bona fide).

Dropouts are kept out: this module only runs inference (eval mode), where they are identities.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class AasistConfig:
    """The authors' model configuration (their ``model_config`` in AASIST*.conf)."""

    #: Samples per input window (~4 s at 16 kHz).
    nb_samp: int
    #: Length of the sinc filters (made odd: 128 -> 129 taps).
    first_conv: int
    #: Number of sinc filters, then (in, out) channels of the residual blocks 1 to 4; blocks
    #: 5 and 6 repeat the last pair.
    filts: tuple
    #: Node dimension after the first graph attention layers, then after the heterogeneous ones.
    gat_dims: tuple[int, int]
    #: Fraction of nodes kept by the spectral pool, the temporal pool, and the pools inside
    #: the heterogeneous branches (the fourth ratio is unused by the authors' network).
    pool_ratios: tuple[float, float, float, float]
    #: Softmax temperatures of the spectral GAT, the temporal GAT and the heterogeneous layers
    #: (the fourth is unused by the authors' network).
    temperatures: tuple[float, float, float, float]


AASIST_CONFIG = AasistConfig(
    nb_samp=64_600,
    first_conv=128,
    filts=(70, (1, 32), (32, 32), (32, 64), (64, 64)),
    gat_dims=(64, 32),
    pool_ratios=(0.5, 0.7, 0.5, 0.5),
    temperatures=(2.0, 2.0, 100.0, 100.0),
)

AASIST_L_CONFIG = AasistConfig(
    nb_samp=64_600,
    first_conv=128,
    filts=(70, (1, 32), (32, 32), (32, 24), (24, 24)),
    gat_dims=(24, 32),
    pool_ratios=(0.4, 0.5, 0.7, 0.5),
    temperatures=(2.0, 2.0, 100.0, 100.0),
)


# --- front end --------------------------------------------------------------------------------


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    return 2595 * np.log10(1 + hz / 700)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return 700 * (10 ** (mel / 2595) - 1)


def sinc_filters(count: int, length: int, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """``count`` band-pass filters of ``length`` taps (made odd, so symmetric) whose band edges
    are equally spaced on the mel scale from 0 Hz to Nyquist, Hamming-windowed: (count, taps).

    The band edges are those of the authors' code: the mel range of a 512-point FFT's bins.
    """
    taps = length + 1 if length % 2 == 0 else length
    bins_hz = (sample_rate // 2) * np.linspace(0, 1, 512 // 2 + 1)
    bins_mel = _hz_to_mel(bins_hz)
    edges = _mel_to_hz(np.linspace(bins_mel.min(), bins_mel.max(), count + 1))
    support = np.arange(-(taps - 1) / 2, (taps - 1) / 2 + 1)

    def low_pass(cutoff: float) -> np.ndarray:  # ideal low-pass impulse response
        return (2 * cutoff / sample_rate) * np.sinc(2 * cutoff * support / sample_rate)

    window = np.hamming(taps)
    bank = np.stack([window * (low_pass(high) - low_pass(low))
                     for low, high in itertools.pairwise(edges)])  # fmt: skip
    return torch.from_numpy(bank.astype(np.float32))


class SincFilterBank(nn.Module):
    """The first layer: a fixed sinc filter bank, (batch, samples) -> (batch, filters, frames).

    The filters are a non-persistent buffer: they follow the module to a device but are not in
    the state_dict (the authors' checkpoints do not hold them)."""

    def __init__(self, count: int, length: int):
        super().__init__()
        self.register_buffer("filters", sinc_filters(count, length).unsqueeze(1), persistent=False)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return F.conv1d(waveform.unsqueeze(1), self.filters)


class ResidualBlock(nn.Module):
    """Two (2, 3) convolutions with a shortcut, then max pooling by 3 along time.

    The first conv pads the spectral axis by one and the second removes it again, so the
    spectral size is kept. A block whose channel count changes has a (1, 3) shortcut conv.

    The authors' block also has a pre-activation (``bn1`` and SELU) on every block but the
    first, whose result their forward then discards: ``conv1`` reads the block's input. Their
    weights were trained that way, so ``bn1`` is kept for the state_dict and not applied.
    """

    def __init__(self, channels: tuple[int, int], *, first: bool = False):
        super().__init__()
        in_ch, out_ch = channels
        if not first:
            self.bn1 = nn.BatchNorm2d(in_ch)  # unused in forward (see the class docstring)
        self.conv1 = nn.Conv2d(in_ch, out_ch, kernel_size=(2, 3), padding=(1, 1))
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, kernel_size=(2, 3), padding=(0, 1))
        self.conv_downsample = (
            nn.Conv2d(in_ch, out_ch, kernel_size=(1, 3), padding=(0, 1))
            if in_ch != out_ch
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(F.selu(self.bn2(self.conv1(x))))
        shortcut = x if self.conv_downsample is None else self.conv_downsample(x)
        return _max_pool_time(out + shortcut)


def _max_pool_time(x: torch.Tensor, size: int = 3) -> torch.Tensor:
    """max_pool2d(x, (1, size)) as a reshape and a max: the same values (the frames that do not
    fill a last group are dropped, as there), 4 to 5 times faster on one CPU thread, where
    max_pool2d spent a fifth of the network's time. An ONNX export gets max_pool2d itself: ONNX
    Runtime's MaxPool is the faster there (it runs in the convolutions' blocked layout, where
    a reshape and a ReduceMax cost a copy and two layout conversions), and it keeps the number
    of frames a function of the input's length, not a constant of the example's."""
    if torch.onnx.is_in_onnx_export():
        return F.max_pool2d(x, (1, size))
    frames = x.shape[-1] // size
    return x[..., : frames * size].unflatten(-1, (frames, size)).amax(dim=-1)


# --- graph layers -----------------------------------------------------------------------------


def _pairwise_products(x: torch.Tensor) -> torch.Tensor:
    """(batch, nodes, dim) -> (batch, nodes, nodes, dim): element-wise product of every pair."""
    return x.unsqueeze(2) * x.unsqueeze(1)


def _node_batch_norm(bn: nn.BatchNorm1d, x: torch.Tensor) -> torch.Tensor:
    """Batch norm over the feature dim of (batch, nodes, dim) nodes."""
    return bn(x.reshape(-1, x.shape[-1])).reshape(x.shape)


def _attention_weight(dim: int) -> nn.Parameter:
    # Loaded from the checkpoint; the initial value only matters for a fresh network.
    return nn.Parameter(nn.init.xavier_normal_(torch.empty(dim, 1)))


class GraphAttentionLayer(nn.Module):
    """Graph attention over a fully connected graph of nodes, (B, N, in) -> (B, N, out).

    The attention of node i on node j is w . tanh(W (x_i * x_j)), divided by a temperature and
    normalised over j; each node becomes the projection of its attended neighbourhood plus a
    projection of itself, then batch norm and SELU.
    """

    def __init__(self, in_dim: int, out_dim: int, *, temperature: float):
        super().__init__()
        self.att_proj = nn.Linear(in_dim, out_dim)
        self.att_weight = _attention_weight(out_dim)
        self.proj_with_att = nn.Linear(in_dim, out_dim)
        self.proj_without_att = nn.Linear(in_dim, out_dim)
        self.bn = nn.BatchNorm1d(out_dim)
        self.temperature = temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = torch.tanh(self.att_proj(_pairwise_products(x))) @ self.att_weight
        attention = torch.softmax(scores.squeeze(-1) / self.temperature, dim=-1)
        x = self.proj_with_att(attention @ x) + self.proj_without_att(x)
        return F.selu(_node_batch_norm(self.bn, x))


class HeterogeneousGraphAttentionLayer(nn.Module):
    """Graph attention over two node types (temporal and spectral) plus a master node.

    Both types are first projected into a common space; the attention score of a pair uses one
    of three weight vectors by the pair's types (same type 1, same type 2, mixed). The master
    node attends to every node (its own weight vector) and is updated without batch norm.
    Returns the updated type-1 nodes, type-2 nodes and master node.
    """

    def __init__(self, in_dim: int, out_dim: int, *, temperature: float):
        super().__init__()
        self.proj_type1 = nn.Linear(in_dim, in_dim)
        self.proj_type2 = nn.Linear(in_dim, in_dim)
        self.att_proj = nn.Linear(in_dim, out_dim)
        self.att_projM = nn.Linear(in_dim, out_dim)
        self.att_weight11 = _attention_weight(out_dim)
        self.att_weight22 = _attention_weight(out_dim)
        self.att_weight12 = _attention_weight(out_dim)
        self.att_weightM = _attention_weight(out_dim)
        self.proj_with_att = nn.Linear(in_dim, out_dim)
        self.proj_without_att = nn.Linear(in_dim, out_dim)
        self.proj_with_attM = nn.Linear(in_dim, out_dim)
        self.proj_without_attM = nn.Linear(in_dim, out_dim)
        self.bn = nn.BatchNorm1d(out_dim)
        self.temperature = temperature

    def forward(
        self, x1: torch.Tensor, x2: torch.Tensor, master: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        n1 = x1.shape[1]
        x = torch.cat([self.proj_type1(x1), self.proj_type2(x2)], dim=1)
        master = self._update_master(x, master)
        attention = torch.softmax(self._pair_scores(x, n1) / self.temperature, dim=-1)
        x = self.proj_with_att(attention @ x) + self.proj_without_att(x)
        x = F.selu(_node_batch_norm(self.bn, x))
        return x[:, :n1], x[:, n1:], master

    def _pair_scores(self, x: torch.Tensor, n1: int) -> torch.Tensor:
        """(B, N, N) attention logits, the weight vector chosen by the block of the pair."""
        hidden = torch.tanh(self.att_proj(_pairwise_products(x)))
        top = torch.cat([hidden[:, :n1, :n1] @ self.att_weight11,
                         hidden[:, :n1, n1:] @ self.att_weight12], dim=2)  # fmt: skip
        bottom = torch.cat([hidden[:, n1:, :n1] @ self.att_weight12,
                            hidden[:, n1:, n1:] @ self.att_weight22], dim=2)  # fmt: skip
        return torch.cat([top, bottom], dim=1).squeeze(-1)

    def _update_master(self, x: torch.Tensor, master: torch.Tensor) -> torch.Tensor:
        """The master node (1 or B, 1, in) attends to all nodes: (B, 1, out)."""
        scores = torch.tanh(self.att_projM(x * master)) @ self.att_weightM  # (B, N, 1)
        attention = torch.softmax(scores / self.temperature, dim=1)
        return self.proj_with_attM(attention.transpose(1, 2) @ x) + self.proj_without_attM(master)


class GraphPool(nn.Module):
    """Keeps the top ``ratio`` of nodes by a learned sigmoid score, each scaled by its score."""

    def __init__(self, ratio: float, dim: int):
        super().__init__()
        self.ratio = ratio
        self.proj = nn.Linear(dim, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        scores = torch.sigmoid(self.proj(h))  # (B, N, 1)
        keep = self._keep(h)
        index = torch.topk(scores, keep, dim=1).indices.expand(-1, -1, h.shape[2])
        return torch.gather(h * scores, 1, index)

    def _keep(self, h: torch.Tensor) -> int:
        """How many of h's nodes are kept: int(nodes * ratio), at least 1. In an ONNX export
        it is computed in the graph (in float64, as Python computes it here) from the number
        of nodes, which then follows the input's length instead of the example's."""
        if not torch.onnx.is_in_onnx_export():
            return max(int(h.shape[1] * self.ratio), 1)
        nodes = torch._shape_as_tensor(h)[1].to(torch.float64)
        return torch.clamp(torch.floor(nodes * self.ratio), min=1).to(torch.int64)  # type: ignore[return-value]


# --- the network ------------------------------------------------------------------------------


class AASIST(nn.Module):
    """(batch, nb_samp) raw 16 kHz waveforms -> (last_hidden (batch, 5 * gat_dims[1]),
    logits (batch, 2)); logit column 1 is bona fide, column 0 spoof."""

    #: Spectral nodes: 70 sinc filters max-pooled by 3 (the positional embedding's length).
    SPECTRAL_NODES = 23

    def __init__(self, config: AasistConfig):
        super().__init__()
        self.config = config
        filts, gat_dims = config.filts, config.gat_dims
        pools, temps = config.pool_ratios, config.temperatures
        encoder_dim = filts[-1][-1]

        self.conv_time = SincFilterBank(filts[0], config.first_conv)
        self.first_bn = nn.BatchNorm2d(1)
        # Nested Sequentials only to match the authors' state_dict keys (encoder.<i>.0.*).
        blocks = [ResidualBlock(filts[1], first=True), ResidualBlock(filts[2]),
                  ResidualBlock(filts[3]), ResidualBlock(filts[4]),
                  ResidualBlock(filts[4]), ResidualBlock(filts[4])]  # fmt: skip
        self.encoder = nn.Sequential(*(nn.Sequential(block) for block in blocks))

        # Loaded from the checkpoint; zeros only stand in until then.
        self.pos_S = nn.Parameter(torch.zeros(1, self.SPECTRAL_NODES, encoder_dim))
        self.master1 = nn.Parameter(torch.zeros(1, 1, gat_dims[0]))
        self.master2 = nn.Parameter(torch.zeros(1, 1, gat_dims[0]))

        self.GAT_layer_S = GraphAttentionLayer(encoder_dim, gat_dims[0], temperature=temps[0])
        self.GAT_layer_T = GraphAttentionLayer(encoder_dim, gat_dims[0], temperature=temps[1])
        # Two branches (1 and 2), each a layer from the first graphs then a residual layer.
        heterogeneous = HeterogeneousGraphAttentionLayer
        self.HtrgGAT_layer_ST11 = heterogeneous(gat_dims[0], gat_dims[1], temperature=temps[2])
        self.HtrgGAT_layer_ST12 = heterogeneous(gat_dims[1], gat_dims[1], temperature=temps[2])
        self.HtrgGAT_layer_ST21 = heterogeneous(gat_dims[0], gat_dims[1], temperature=temps[2])
        self.HtrgGAT_layer_ST22 = heterogeneous(gat_dims[1], gat_dims[1], temperature=temps[2])

        self.pool_S = GraphPool(pools[0], gat_dims[0])
        self.pool_T = GraphPool(pools[1], gat_dims[0])
        self.pool_hS1 = GraphPool(pools[2], gat_dims[1])
        self.pool_hT1 = GraphPool(pools[2], gat_dims[1])
        self.pool_hS2 = GraphPool(pools[2], gat_dims[1])
        self.pool_hT2 = GraphPool(pools[2], gat_dims[1])

        self.out_layer = nn.Linear(5 * gat_dims[1], 2)

    def forward(self, waveform: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self._encode(waveform)  # (B, C, 23 spectral bins, t frames)
        magnitude = features.abs()

        spectral = magnitude.amax(dim=3).transpose(1, 2) + self.pos_S  # (B, 23, C)
        spectral = self.pool_S(self.GAT_layer_S(spectral))
        temporal = magnitude.amax(dim=2).transpose(1, 2)  # (B, t, C)
        temporal = self.pool_T(self.GAT_layer_T(temporal))

        branch1 = (self.HtrgGAT_layer_ST11, self.HtrgGAT_layer_ST12, self.pool_hT1, self.pool_hS1)
        branch2 = (self.HtrgGAT_layer_ST21, self.HtrgGAT_layer_ST22, self.pool_hT2, self.pool_hS2)
        t1, s1, m1 = self._branch(temporal, spectral, self.master1, *branch1)
        t2, s2, m2 = self._branch(temporal, spectral, self.master2, *branch2)
        temporal, spectral = torch.maximum(t1, t2), torch.maximum(s1, s2)
        master = torch.maximum(m1, m2)

        last_hidden = torch.cat([temporal.abs().amax(dim=1), temporal.mean(dim=1),
                                 spectral.abs().amax(dim=1), spectral.mean(dim=1),
                                 master.squeeze(1)], dim=1)  # fmt: skip
        return last_hidden, self.out_layer(last_hidden)

    def _encode(self, waveform: torch.Tensor) -> torch.Tensor:
        x = self.conv_time(waveform).unsqueeze(1)  # (B, 1, filters, frames)
        x = F.selu(self.first_bn(F.max_pool2d(x.abs(), (3, 3))))
        return self.encoder(x)

    @staticmethod
    def _branch(temporal, spectral, master, first, second, pool_t, pool_s):
        """One heterogeneous branch: a layer, pooling, then a second layer added residually.
        The temporal nodes are type 1, the spectral nodes type 2 (as in the authors' code)."""
        t, s, m = first(temporal, spectral, master)
        t, s = pool_t(t), pool_s(s)
        t_aug, s_aug, m_aug = second(t, s, m)
        return t + t_aug, s + s_aug, m + m_aug

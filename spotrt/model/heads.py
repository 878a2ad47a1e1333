"""The parts after the shared features: proposal network, region encoder, detection and recognition."""

from __future__ import annotations

import torch
from torch import nn

from .backbone import conv_bn
from .config import SpotterConfig


class TextProposalNetwork(nn.Module):
    """RPN over text-shaped anchors: per position and anchor, a text score and box deltas.

    With `level_anchor_heights`, the stride-8 features are also downsampled (a 3x3 stride-2
    convolution per level) to coarser levels whose positions see whole large words; the 3x3 trunk is
    shared by all levels, each level has its own 1x1 score and box layers, and the outputs of all
    levels are concatenated (finest first), in the order of `boxes.make_level_anchors`.
    """

    def __init__(self, cfg: SpotterConfig) -> None:
        super().__init__()
        c = cfg.feat_channels
        self.conv = conv_bn(c, 96, k=3, dilation=2)
        self.cls = nn.Conv2d(96, cfg.num_anchors, 1)
        self.reg = nn.Conv2d(96, cfg.num_anchors * 4, 1)
        n_ratios = len(cfg.anchor_ratios)
        self.down = nn.ModuleList(conv_bn(c, c, stride=2) for _ in cfg.level_anchor_heights)
        self.level_cls = nn.ModuleList(nn.Conv2d(96, len(hs) * n_ratios, 1) for hs in cfg.level_anchor_heights)
        self.level_reg = nn.ModuleList(nn.Conv2d(96, len(hs) * n_ratios * 4, 1) for hs in cfg.level_anchor_heights)
        for cls, reg in zip([self.cls, *self.level_cls], [self.reg, *self.level_reg]):
            nn.init.normal_(reg.weight, std=0.01)
            nn.init.zeros_(reg.bias)
            nn.init.constant_(cls.bias, -4.0)  # rare positives: start from a low text prior

    @staticmethod
    def _flat(logit_map: torch.Tensor, delta_map: torch.Tensor):
        b = logit_map.shape[0]
        return logit_map.permute(0, 2, 3, 1).reshape(b, -1), delta_map.permute(0, 2, 3, 1).reshape(b, -1, 4)

    def forward(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> logits (B, N), deltas (B, N, 4): every level's positions x anchors, ordered like
        make_level_anchors."""
        x = self.conv(feats)
        logits, deltas = self._flat(self.cls(x), self.reg(x))
        if not len(self.down):
            return logits, deltas
        all_logits, all_deltas = [logits], [deltas]
        f = feats
        for down, cls, reg in zip(self.down, self.level_cls, self.level_reg):
            f = down(f)
            y = self.conv(f)
            lg, dl = self._flat(cls(y), reg(y))
            all_logits.append(lg)
            all_deltas.append(dl)
        return torch.cat(all_logits, dim=1), torch.cat(all_deltas, dim=1)


class RegionEncoder(nn.Module):
    """Convolutions over each pooled region, then an LSTM over its columns.

    `encoder_convs` conv blocks (3x3, each followed by a 2x1 max-pool while the height is above 1)
    read the character shapes and fold the height; the columns are then projected and run through a
    (by default bidirectional) LSTM. `encoder_convs=0, encoder_bidirectional=False` is the paper's
    plain encoder: one column conv and a forward LSTM.

    Returns the attention memory (N, W_max, D), zeroed past each region's width, and the holistic
    feature (N, D): the forward state at the region's last valid column, joined with the backward
    state at its first column when bidirectional.
    """

    def __init__(self, cfg: SpotterConfig) -> None:
        super().__init__()
        c, d = cfg.rec_channels, cfg.encoder_hidden
        self.bidirectional = cfg.encoder_bidirectional
        if self.bidirectional and d % 2:
            raise ValueError(f"config encoder_hidden: found {d}, expected an even size for a bidirectional encoder")
        layers: list[nn.Module] = []
        h = cfg.roi_height
        if cfg.encoder_convs == 0:
            layers += list(conv_bn(c, c))
        for _ in range(cfg.encoder_convs):
            layers.append(conv_bn(c, cfg.encoder_channels))
            c = cfg.encoder_channels
            if h > 1:
                layers.append(nn.MaxPool2d((2, 1), (2, 1)))
                h //= 2
        self.column = nn.Sequential(*layers)
        self.project = nn.Linear(c * h, d)
        self.lstm = nn.LSTM(d, d // 2 if self.bidirectional else d, batch_first=True,
                            bidirectional=self.bidirectional)

    def forward(self, pooled: torch.Tensor, widths: torch.Tensor):
        n, _, _, w = pooled.shape
        x = self.column(pooled)
        c, h = x.shape[1], x.shape[2]
        x = x.permute(0, 3, 1, 2).reshape(n, w, c * h)
        x = torch.relu(self.project(x))
        out, _ = self.lstm(x)
        mask = torch.arange(w, device=pooled.device)[None, :] < widths[:, None]
        memory = out * mask[..., None].to(out.dtype)
        last = (widths - 1).clamp(min=0)
        holistic = out[torch.arange(n, device=out.device), last]
        if self.bidirectional:
            half = out.shape[2] // 2
            holistic = torch.cat([holistic[:, :half], out[:, 0, half:]], dim=1)
        return memory, mask, holistic


class DetectionHead(nn.Module):
    """Text/non-text logit and box refinement deltas from the holistic region feature."""

    def __init__(self, cfg: SpotterConfig) -> None:
        super().__init__()
        d = cfg.encoder_hidden
        self.fc = nn.Sequential(nn.Linear(d, d), nn.ReLU(inplace=True))
        self.cls = nn.Linear(d, 1)
        self.reg = nn.Linear(d, 4)
        nn.init.normal_(self.reg.weight, std=0.001)
        nn.init.zeros_(self.reg.bias)

    def forward(self, holistic: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.fc(holistic)
        return self.cls(x).squeeze(-1), self.reg(x)


class AttentionDecoder(nn.Module):
    """Attention LSTM decoder (Bahdanau): teacher forcing in training, greedy at inference."""

    def __init__(self, cfg: SpotterConfig) -> None:
        super().__init__()
        d, hdim, a = cfg.encoder_hidden, cfg.decoder_hidden, cfg.attn_dim
        self.max_len = cfg.max_word_len
        self.start = cfg.start_token
        self.embed = nn.Embedding(cfg.num_classes + 1, cfg.embed_dim)
        self.init_h = nn.Linear(d, hdim)
        self.mem_proj = nn.Linear(d, a)
        self.hid_proj = nn.Linear(hdim, a, bias=False)
        self.score = nn.Linear(a, 1, bias=False)
        self.cell = nn.LSTMCell(cfg.embed_dim + d, hdim)
        self.out = nn.Linear(hdim + d, cfg.num_classes)

    def init_state(self, holistic: torch.Tensor):
        h = torch.tanh(self.init_h(holistic))
        return h, torch.zeros_like(h)

    def step(self, token, state, memory, mem_keys, mask):
        """One decoding step -> (logits (N, classes), new state, attention weights (N, W))."""
        h, c = state
        e = self.score(torch.tanh(mem_keys + self.hid_proj(h)[:, None, :])).squeeze(-1)
        e = e.masked_fill(~mask, -1e4)
        alpha = torch.softmax(e, dim=-1)
        ctx = torch.bmm(alpha[:, None, :], memory).squeeze(1)
        h, c = self.cell(torch.cat([self.embed(token), ctx], dim=-1), (h, c))
        return self.out(torch.cat([h, ctx], dim=-1)), (h, c), alpha

    def forward(self, memory, mask, holistic, targets: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: targets (N, T) token ids -> logits (N, T, classes)."""
        n, t = targets.shape
        state = self.init_state(holistic)
        mem_keys = self.mem_proj(memory)
        token = torch.full((n,), self.start, dtype=torch.long, device=memory.device)
        logits = []
        for i in range(t):
            lg, state, _ = self.step(token, state, memory, mem_keys, mask)
            logits.append(lg)
            token = targets[:, i]
        return torch.stack(logits, dim=1)

    @torch.no_grad()
    def greedy(self, memory, mask, holistic) -> tuple[torch.Tensor, torch.Tensor]:
        """-> tokens (N, max_len) with 0 after the end, and per-step probabilities (N, max_len).

        Stops early once every region has emitted end-of-word.
        """
        n = memory.shape[0]
        tokens = torch.zeros((n, self.max_len), dtype=torch.long, device=memory.device)
        probs = torch.zeros((n, self.max_len), dtype=memory.dtype, device=memory.device)
        if n == 0:
            return tokens, probs
        state = self.init_state(holistic)
        mem_keys = self.mem_proj(memory)
        token = torch.full((n,), self.start, dtype=torch.long, device=memory.device)
        ended = torch.zeros(n, dtype=torch.bool, device=memory.device)
        for i in range(self.max_len):
            lg, state, _ = self.step(token, state, memory, mem_keys, mask)
            p, token = torch.softmax(lg, dim=-1).max(dim=-1)
            token = token.masked_fill(ended, 0)
            tokens[:, i] = token
            probs[:, i] = torch.where(ended, torch.ones_like(p), p)
            ended |= token == 0
            if bool(ended.all()):
                probs[:, i + 1 :] = 1.0  # as if the remaining steps had run: same as a fixed-length decoder
                break
        return tokens, probs

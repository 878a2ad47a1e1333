"""NumPy reference of the greedy attention decoder: the definition of the AttnDecoder op (no torch here).

It is AttentionDecoder.greedy (spotrt/model/heads.py) written out, in float64.

Inputs
    memory    (N, W, D) float32, the region encoder's per-column outputs
    widths    (N,) integer; column w of region n is attended to iff w < widths[n]
    holistic  (N, D) float32
    weights   the decoder's parameters by their names in AttentionDecoder.state_dict() (WEIGHT_NAMES)
    max_len (T), start_token, num_classes (C)

Outputs
    tokens    (N, T) int32, 0 (end-of-word) at and after the end
    probs     (N, T) float32, the softmax probability of each emitted token; 1.0 after the end

Definition, per region (Hd = decoder hidden size, E = embedding size, A = attention size):

    h = tanh(init_h.W @ holistic + init_h.b),  c = 0,  keys[w] = mem_proj.W @ memory[w] + mem_proj.b
    token = start_token, ended = false; for t in 0..T-1:
        e[w]   = score.W @ tanh(keys[w] + hid_proj.W @ h)   if w < width else -1e4
        alpha  = softmax(e) over all W columns;  ctx = sum_w alpha[w] memory[w]
        gates  = cell.weight_ih @ [embed[token], ctx] + cell.bias_ih + cell.weight_hh @ h + cell.bias_hh
        i, f, g, o = split(gates, 4)  (PyTorch's order);  c = sig(f) c + sig(i) tanh(g);  h = sig(o) tanh(c)
        logits = out.W @ [h, ctx] + out.b;  token = argmax(logits);  p = softmax(logits)[token]
        if ended: token = 0, p = 1;  emit (token, p);  ended |= token == 0
    Once every region has ended the remaining steps emit (0, 1.0), exactly what running them would give.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

MASK_FILL = -1e4

# Name -> shape in terms of V (embedding rows = C + 1), E, D, Hd, A, C.
WEIGHT_SHAPES: dict[str, tuple[str, ...]] = {
    "embed.weight": ("V", "E"),
    "init_h.weight": ("Hd", "D"),
    "init_h.bias": ("Hd",),
    "mem_proj.weight": ("A", "D"),
    "mem_proj.bias": ("A",),
    "hid_proj.weight": ("A", "Hd"),
    "score.weight": ("1", "A"),
    "cell.weight_ih": ("4Hd", "E+D"),
    "cell.weight_hh": ("4Hd", "Hd"),
    "cell.bias_ih": ("4Hd",),
    "cell.bias_hh": ("4Hd",),
    "out.weight": ("C", "Hd+D"),
    "out.bias": ("C",),
}
WEIGHT_NAMES = tuple(WEIGHT_SHAPES)


def decoder_dims(weights: Mapping[str, np.ndarray]) -> dict[str, int]:
    """Sizes V, E, D, Hd, A, C inferred from the weights; ValueError names a missing or inconsistent one."""
    missing = [k for k in WEIGHT_NAMES if k not in weights]
    if missing:
        raise ValueError(f"decoder weights: {missing} missing, expected all of {list(WEIGHT_NAMES)}")
    v, e = np.shape(weights["embed.weight"])
    hd, d = np.shape(weights["init_h.weight"])
    a = np.shape(weights["mem_proj.weight"])[0]
    c = np.shape(weights["out.weight"])[0]
    dims = {"V": v, "E": e, "D": d, "Hd": hd, "A": a, "C": c, "1": 1,
            "4Hd": 4 * hd, "E+D": e + d, "Hd+D": hd + d}
    for name, symbols in WEIGHT_SHAPES.items():
        expected = tuple(dims[s] for s in symbols)
        found = tuple(np.shape(weights[name]))
        if found != expected:
            raise ValueError(f"decoder weight {name}: found shape {found}, expected {expected} ({', '.join(symbols)})")
    return {k: dims[k] for k in ("V", "E", "D", "Hd", "A", "C")}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def attn_decoder_ref(
    memory: np.ndarray,
    widths: np.ndarray,
    holistic: np.ndarray,
    weights: Mapping[str, np.ndarray],
    max_len: int,
    start_token: int,
    num_classes: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy decode -> (tokens (N, max_len) int32, probs (N, max_len) float32). See the module docstring."""
    dims = decoder_dims(weights)
    if dims["C"] != num_classes:
        raise ValueError(f"num_classes: found {num_classes}, expected {dims['C']} (rows of out.weight)")
    if not 0 <= start_token < dims["V"]:
        raise ValueError(f"start_token: found {start_token}, expected an int in [0, {dims['V'] - 1}] (embedding rows)")
    memory = np.asarray(memory, dtype=np.float64)
    n, w, d = memory.shape
    if d != dims["D"]:
        raise ValueError(f"memory: found shape {memory.shape}, expected (N, W, {dims['D']})")
    holistic = np.asarray(holistic, dtype=np.float64).reshape(n, d)
    widths = np.asarray(widths).reshape(n)
    p = {k: np.asarray(weights[k], dtype=np.float64) for k in WEIGHT_NAMES}
    hd = dims["Hd"]

    tokens = np.zeros((n, max_len), dtype=np.int32)
    probs = np.ones((n, max_len), dtype=np.float32)
    if n == 0:
        return tokens, probs
    mask = np.arange(w)[None, :] < widths[:, None]
    h = np.tanh(holistic @ p["init_h.weight"].T + p["init_h.bias"])
    c = np.zeros_like(h)
    keys = memory @ p["mem_proj.weight"].T + p["mem_proj.bias"]                     # (N, W, A)
    token = np.full(n, start_token, dtype=np.int64)
    ended = np.zeros(n, dtype=bool)
    for t in range(max_len):
        e = np.tanh(keys + (h @ p["hid_proj.weight"].T)[:, None, :]) @ p["score.weight"][0]
        e = np.where(mask, e, MASK_FILL)
        alpha = np.exp(e - e.max(axis=1, keepdims=True))
        alpha /= alpha.sum(axis=1, keepdims=True)
        ctx = np.einsum("nw,nwd->nd", alpha, memory)
        x = np.concatenate([p["embed.weight"][token], ctx], axis=1)
        gates = x @ p["cell.weight_ih"].T + p["cell.bias_ih"] + h @ p["cell.weight_hh"].T + p["cell.bias_hh"]
        i, f, g, o = (gates[:, k * hd : (k + 1) * hd] for k in range(4))
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        h = _sigmoid(o) * np.tanh(c)
        logits = np.concatenate([h, ctx], axis=1) @ p["out.weight"].T + p["out.bias"]
        token = logits.argmax(axis=1)
        prob = 1.0 / np.exp(logits - logits.max(axis=1, keepdims=True)).sum(axis=1)
        token = np.where(ended, 0, token)
        tokens[:, t] = token
        probs[:, t] = np.where(ended, 1.0, prob)
        ended |= token == 0
        if ended.all():
            break
    return tokens, probs

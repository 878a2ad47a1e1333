"""Greedy attention decoder: the NumPy reference that defines the AttnDecoder op."""

from .reference import WEIGHT_NAMES, attn_decoder_ref, decoder_dims

__all__ = ["WEIGHT_NAMES", "attn_decoder_ref", "decoder_dims"]

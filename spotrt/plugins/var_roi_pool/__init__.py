"""Varying-size RoI pooling: the NumPy reference that defines the op."""

from .reference import var_roi_pool_ref

__all__ = ["var_roi_pool_ref"]

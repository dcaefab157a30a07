"""Pieces shared by several algorithms (critic heads, noise, buffers, targets, fitting, diagnostics)."""

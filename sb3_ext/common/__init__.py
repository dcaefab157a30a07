"""Pieces shared by several algorithms (noise, buffers, schedules, diagnostics)."""

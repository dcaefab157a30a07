"""Environments shipped with sb3-ext (registered with gymnasium on ``import sb3_ext``)."""

"""Phase 2: power-law robot assistance and its exact backward-induction solver."""

"""Layer 2, references: exact and numerical posteriors the fits are compared against (docs/MATH.md)."""

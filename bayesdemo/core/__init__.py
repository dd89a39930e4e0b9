"""Layer 1, the problem: validation, data, priors, the exact posterior, scenarios (no torch, no Streamlit)."""

"""Layer 3, fitting: the runner (the caller owns the loop), convergence metrics, reports, exports, budgets."""

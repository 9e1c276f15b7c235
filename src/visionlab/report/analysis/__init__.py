"""The report's numbers: which runs are one variant and whom each is compared with, seed statistics,
convergence, run health, class names, published references. No text formatting here."""

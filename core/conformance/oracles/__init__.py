"""Independent oracles: naive implementations in float64, written for clarity rather than speed. They
share no code with any provider, so the torch reference is checked by them too."""

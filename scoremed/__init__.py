"""scoremed: score-based generative priors for inverse problems in medical imaging."""
from scoremed.errors import InputError

__all__ = ["InputError"]

"""One module per SAE architecture; each registers itself with ``monosemantic.sae.core.register``."""

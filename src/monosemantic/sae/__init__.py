"""sae stage."""

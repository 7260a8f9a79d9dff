"""Configuration and rules: YAML in, immutable validated models out."""

"""The judge: samples + baselines + rules -> rule results -> alert states -> a verdict."""

"""Seed-style baselines, written by us from the description in SEED_NOTES.md (none of the seed's code is used)."""

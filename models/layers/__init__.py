"""Layers built on anyaccel ops. Every layer that holds weights says which checkpoint tensors fill them
(`weight_slots`), so the loader needs no per-architecture name table."""

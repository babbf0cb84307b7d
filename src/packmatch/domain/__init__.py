"""Frozen, validated value objects: the vocabulary every layer shares."""

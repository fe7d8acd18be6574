"""Business rules behind small interfaces: routing, keys, quotas, usage, pricing."""

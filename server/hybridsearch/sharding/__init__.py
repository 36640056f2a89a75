"""Sharded collections: the on-disk layout (`layout`), the distributed build and the Ray
serving path (optional extra ``ray``; nothing here is imported by the default server)."""

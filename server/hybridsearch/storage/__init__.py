"""Index directories on disk: manifest, atomic writes, corpus readers."""

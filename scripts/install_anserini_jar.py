#!/usr/bin/env python3
"""Install the Anserini jar the Lucene sparse arm runs (`hybridsearch.sparse.lucene_jar`).

python scripts/install_anserini_jar.py [--out PATH]
"""

from __future__ import annotations

import sys

from hybridsearch.sparse.lucene_jar import main

if __name__ == "__main__":
    sys.exit(main())

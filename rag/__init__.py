"""ragtrail: retrieval-augmented generation with evaluation built in.

Importing the package sets the offline defaults every entry point needs: the model hub is never
contacted (a hub id would otherwise stall for a minute before failing) and ragas sends no telemetry.
Users who do have a hub can export ``HF_HUB_OFFLINE=0`` before running.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # model-loading bars; ragtrail draws its own

__version__ = "0.1.0"

"""Training the cross-encoder reranker: data loaders (:mod:`.data`), hard negatives and label-free pairs
(:mod:`.mining`), the trainer with held-out nDCG@10 (:mod:`.train`), safetensors checkpoints and the fp16
export (:mod:`.checkpoint`), and the recipe/CLI glue (:mod:`.sources`). Heavy libraries load lazily."""

from __future__ import annotations

"""Write a development sample of COVID-QA questions, disjoint from the test sample that
``rag eval qa --limit 200 --seed 0`` draws, for calibrating the answer decision without touching the
test questions. The shared data is not copied into the repository: the file goes under runs/.

    python benchmarks/qa_dev_split.py ../shared/data/covidqa/questions.jsonl --n 100 --out runs/covidqa-dev.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eval.qa import load_questions, sample_items


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("questions", type=Path)
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--test-limit", type=int, default=200, help="size of the test sample to stay clear of")
    p.add_argument("--test-seed", type=int, default=0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    items = load_questions(args.questions)
    test = {it.id for it in sample_items(items, limit=args.test_limit, seed=args.test_seed)}
    rest = [it for it in items if it.id not in test]
    dev = sorted(random.Random(args.seed).sample(range(len(rest)), args.n))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as fh:
        for i in dev:
            it = rest[i]
            fh.write(json.dumps({"id": it.id, "question": it.question, "answers": list(it.answers)}) + "\n")
    print(f"wrote {args.n} development questions (none of the {len(test)} test questions) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Write a development sample of COVID-QA questions, disjoint from the test sample that
``rag eval qa --limit 200 --seed 0`` draws, for calibrating the answer decision without touching the
test questions. The shared data is not copied into the repository: the file goes under runs/.

    python benchmarks/qa_dev_split.py ../shared/data/covidqa/questions.jsonl --n 100 --out runs/covidqa-dev.jsonl

``--head-of-test N`` writes instead the first N questions of the test sample (file order), the subset the
slow "before" configuration was run on:

    python benchmarks/qa_dev_split.py ../shared/data/covidqa/questions.jsonl --head-of-test 30 \\
        --out runs/covidqa-test30.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eval.qa import QAItem, load_questions, sample_items


def _write(path: Path, items: list[QAItem]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for it in items:
            fh.write(json.dumps({"id": it.id, "question": it.question, "answers": list(it.answers)}) + "\n")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("questions", type=Path)
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--test-limit", type=int, default=200, help="size of the test sample to stay clear of")
    p.add_argument("--test-seed", type=int, default=0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--head-of-test", type=int, metavar="N", help="write the first N test questions instead")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    items = load_questions(args.questions)
    sample = sample_items(items, limit=args.test_limit, seed=args.test_seed)
    if args.head_of_test is not None:
        _write(args.out, sample[: args.head_of_test])
        print(f"wrote the first {args.head_of_test} of the {len(sample)} test questions to {args.out}")
        return 0
    test = {it.id for it in sample}
    rest = [it for it in items if it.id not in test]
    dev = sorted(random.Random(args.seed).sample(range(len(rest)), args.n))
    _write(args.out, [rest[i] for i in dev])
    print(f"wrote {args.n} development questions (none of the {len(test)} test questions) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The TaskAPI container: runs once, counts the labels of a few samples, writes SUMMARY_FILE."""

import json
import os

SAMPLES = [1.4, 1.3, 4.7, 4.5, 6.0, 5.1, 1.5]


def main() -> None:
    counts: dict[str, int] = {}
    for petal_length in SAMPLES:
        label = (
            "setosa" if petal_length < 2.5 else "versicolor" if petal_length < 4.9 else "virginica"
        )
        counts[label] = counts.get(label, 0) + 1
    summary = {"samples": len(SAMPLES), "counts": counts}
    target = os.environ.get("SUMMARY_FILE")
    if target:
        with open(target, "w") as file:
            json.dump(summary, file)
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()

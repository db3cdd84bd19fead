"""Cold first call: compiler import + compile + first call, in fresh processes.

Columns: eager (no compiler), torch.compile(backend="eager"), ferrodyn.compile(backend="eager"),
on a small MLP, the 12-block transformer of `benches/_cases.py`, and a tiny transformers GPT2
(built from a config, no downloads). torch
(and the model) are imported/built before the timer in every column; the timer covers
`import ferrodyn` / `import torch._dynamo`, the compile call and the first call. Each cell is
the median of `--reps` fresh processes.

    python benches/bench_cold_start.py [--reps 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import json, sys, time
import torch
model_name, column, benches = sys.argv[1], sys.argv[2], sys.argv[3]
torch.manual_seed(0)
sys.path.insert(0, benches)
kwargs = {}
train = False
if model_name == "transformer":
    import _cases
    model = _cases.Transformer().eval()
    args = (torch.randn(2, 16, 64),)
elif model_name == "mlp":
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 10),
    ).eval()
    args = (torch.randn(8, 64),)
else:
    import _suite_models
    model, args, kwargs, train = _suite_models.build(model_name)
dynamo_before = "torch._dynamo" in sys.modules
with torch.set_grad_enabled(train):
    t0 = time.perf_counter()
    if column == "eager":
        fn = model
    elif column == "torch.compile":
        import torch._dynamo
        fn = torch.compile(model, backend="eager")
    else:
        import ferrodyn
        fn = ferrodyn.compile(model, backend="eager")
    out = fn(*args, **kwargs)
    if train:
        loss = out.float().pow(2).mean()
        loss.backward()
    elapsed = time.perf_counter() - t0
print(json.dumps({"s": elapsed, "dynamo_before": dynamo_before,
                  "dynamo_after": "torch._dynamo" in sys.modules}))
"""

COLUMNS = ("eager", "torch.compile", "ferrodyn")


def run_once(model: str, column: str, env: dict[str, str]) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, model, column, os.path.dirname(os.path.abspath(__file__))],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument(
        "--models",
        default="mlp,transformer,gpt2",
        help="comma-separated: mlp, transformer, or a name of benches/_suite_models.py "
        "('suite' for all of those: issue 13's point-1 models)",
    )
    args = parser.parse_args()
    env = dict(os.environ)
    env.setdefault("TRANSFORMERS_VERBOSITY", "error")
    print(
        "| model | eager (s) | torch.compile (s) | ferrodyn (s) | ferrodyn / torch.compile "
        "| torch._dynamo loaded by ferrodyn? |"
    )
    print("|---|---|---|---|---|---|")
    names = args.models.split(",")
    if "suite" in names:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import _suite_models

        i = names.index("suite")
        names[i : i + 1] = list(_suite_models.NAMES)
    for model in names:
        times: dict[str, list[float]] = {c: [] for c in COLUMNS}
        loaded = set()
        for _ in range(args.reps):
            for column in COLUMNS:  # interleaved, so machine noise hits every column alike
                r = run_once(model, column, env)
                times[column].append(r["s"])
                if column == "ferrodyn":
                    loaded.add(
                        "before" if r["dynamo_before"] else ("yes" if r["dynamo_after"] else "no")
                    )
        med = {c: statistics.median(v) for c, v in times.items()}
        print(
            f"| {model} | {med['eager']:.3f} | {med['torch.compile']:.3f} | "
            f"{med['ferrodyn']:.3f} | {med['ferrodyn'] / med['torch.compile']:.2f} | "
            f"{'/'.join(sorted(loaded))} |"
        )


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# Reproduces the pFedLoRA table of docs/results.md: pFedLoRA, its joint-training
# ablation, LG-FedAvg and Standalone on the cnnzoo example, 3 seeds, at 10
# clients (full participation), 50 clients (20% sampled per round), and 5
# clients with 100 training examples each for 10 rounds (scarce data, the
# integration test's setting). A run whose summary.json exists is kept.
# Usage: scripts/pfedlora-results.sh [OUT_DIR]   (needs a release build)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/pfedlora-results}
lorafed=${LORAFED:-build/release/bin/lorafed}
[ -x "$lorafed" ] || lorafed=build/bin/lorafed
mkdir -p "$out"

declare -A setting_args=(
  [10]=""
  [50]="--set federation.num_clients=50 --set federation.fraction_fit=0.2 --set federation.rounds=50 --set federation.evaluate_every=10"
  [5]="--set federation.num_clients=5 --set model.max_train_examples=100 --set federation.rounds=10"
)
for clients in 10 50 5; do
  for example in pfedlora pfedlora-joint lgfedavg standalone; do
    for seed in 1 2 3; do
      run="$out/$clients-$example-$seed"
      [ -f "$run/summary.json" ] && continue
      # shellcheck disable=SC2086
      "$lorafed" simulate "examples/$example-fmnist.toml" --set "federation.seed=$seed" \
        ${setting_args[$clients]} --out "$run" --log-level warn
      echo "done: $run"
    done
  done
done

python3 - "$out" <<'PY'
import json, statistics, sys, pathlib
out = pathlib.Path(sys.argv[1])
names = {"pfedlora": "pFedLoRA", "pfedlora-joint": "pFedLoRA, joint (ablation)",
         "lgfedavg": "LG-FedAvg", "standalone": "Standalone"}
settings = {10: "10, all sampled", 50: "50, 20% sampled", 5: "5, 100 examples each, 10 rounds"}
print("| clients | strategy | personalised accuracy (mean ± std, 3 seeds) | bytes / client / round | full-model bytes / client / round | training GFLOP / client / round |")
print("| --- | --- | --- | --- | --- | --- |")
for clients in (10, 50, 5):
    for example, name in names.items():
        runs = [json.loads((out / f"{clients}-{example}-{seed}" / "summary.json").read_text())
                for seed in (1, 2, 3)]
        accuracy = [100 * run["final_accuracy"] for run in runs]
        mean = lambda key: statistics.mean(run[key] for run in runs)
        print(f"| {settings[clients]} | {name} | {statistics.mean(accuracy):.2f} ± {statistics.stdev(accuracy):.2f} "
              f"| {mean('bytes_per_client_round'):,.0f} | {mean('full_model_bytes_per_client_round'):,.0f} "
              f"| {mean('train_flops_per_client_round') / 1e9:.2f} |")
PY

#!/usr/bin/env bash
# The IMDb fine-tuning example end to end on real reviews, small enough for CI: a random
# bert-tiny (the default model's vocabulary) on 64 training and 64 test reviews, 2 processes.
# Checks: it trains in bf16 and fp32 and evaluates every test review once; the saved folder is a
# Hugging Face model; a run resumed from its step-4 checkpoint ends with bit-identical weights
# and the same accuracy as the uninterrupted run; bad options are clear errors.
#   tests/integration/scripts/imdb_finetune.sh <accel binary> <imdb_finetune binary>
set -uo pipefail
accel="$1"; example="$2"
export OMP_NUM_THREADS=1 ACCEL_TIMEOUT=120
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
fail=0; pass=0
ok() { pass=$((pass + 1)); echo "PASS $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ -n "${2:-}" ] && echo "$2" | tail -30; }
small=(--config bert-tiny --max_train_samples 64 --max_eval_samples 64 --batch_size 4 --max_length 64 --seed 3)
run() {  # run <name> <precision> args...: 2 processes; output in $work/<name>.log
  local name="$1" precision="$2"; shift 2
  # Port 0: a free port, so this can run beside the other multi-process tests (ctest -j).
  "$accel" launch --num_processes 2 --main_process_port 0 --mixed_precision "$precision" "$example" "${small[@]}" "$@" \
    > "$work/$name.log" 2>&1
}
result() { grep -o 'RESULT accuracy=[0-9.]* seen=[0-9]*' "$work/$1.log"; }

for p in bf16 no; do
  if run "train_$p" "$p" --output_dir "$work/model_$p" && result "train_$p" | grep -q 'seen=64$' &&
     [ -s "$work/model_$p/model.safetensors" ] && [ -s "$work/model_$p/config.json" ] &&
     grep -q "training: 2 process(es), $p" "$work/train_$p.log"; then
    ok "trains on 2 processes in $p, evaluates 64/64 reviews, saves a Hugging Face folder"
  else
    bad "train in $p" "$(cat "$work/train_$p.log")"
  fi
done

# Exact resume: 8 steps per process; checkpoints after steps 4 (checkpoint_0) and kept.
if run full bf16 --checkpointing_steps 4 --checkpoints_total_limit 5 --project_dir "$work/full" \
     --output_dir "$work/full_model" && [ -d "$work/full/checkpoints/checkpoint_0" ]; then
  ok "checkpoints written during training"
else
  bad "checkpointing run" "$(cat "$work/full.log")"
fi
if run resumed bf16 --resume_from_checkpoint "$work/full/checkpoints/checkpoint_0" \
     --project_dir "$work/resumed" --output_dir "$work/resumed_model" &&
   grep -q 'resumed from .*step 4' "$work/resumed.log" &&
   cmp -s "$work/full_model/model.safetensors" "$work/resumed_model/model.safetensors" &&
   [ "$(result full)" = "$(result resumed)" ]; then
  ok "resumed from step 4: bit-identical weights and the same accuracy ($(result resumed))"
else
  bad "exact resume" "$(cat "$work/resumed.log"; result full; result resumed)"
fi

# Clear errors, no hang.
if out=$("$example" --no_such_option 2>&1); [ $? -ne 0 ] && echo "$out" | grep -q "unknown option '--no_such_option'"; then
  ok "unknown option is an error"
else
  bad "unknown option" "$out"
fi
if out=$("$example" "${small[@]}" --data-dir "$work/nowhere" 2>&1); [ $? -ne 0 ] && echo "$out" | grep -q "nowhere"; then
  ok "missing data folder is an error naming it"
else
  bad "missing data folder" "$out"
fi
if out=$("$example" "${small[@]}" --resume_from_checkpoint "$work/no_checkpoint" 2>&1); [ $? -ne 0 ] &&
   echo "$out" | grep -q "no_checkpoint"; then
  ok "missing checkpoint is an error naming it"
else
  bad "missing checkpoint" "$out"
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

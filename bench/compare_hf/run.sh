#!/usr/bin/env bash
# Side by side with the reference stack: the identical CPU training workload (architecture with
# random init, batch, sequence length, AdamW lr, precision, steps, threads) through accel
# (`accel bench precision --single P`, its own process) and through Hugging Face accelerate +
# transformers (hf_precision_step.py in .venv-ref), alternating ours/theirs, ROUNDS times, for 1
# process and for 2 processes (accel: `accel launch --num_processes 2`; reference: torchrun with
# ACCELERATE_USE_CPU=1, since `accelerate launch --cpu` starts a single process without mpirun).
# Prints medians and ours/theirs ratios of throughput (samples/s, all processes) and peak RSS
# (rank 0's VmHWM / ru_maxrss).
#
#   bash bench/compare_hf/run.sh [--rounds 3] [--precisions no,bf16] [--procs 1,2]
#        [--config all-MiniLM-L6-v2] [--seq_len 256] [--batch_size 16] [--steps 5] [--warmup 1]
#        [--threads N (total over the processes; default: nproc)] [--out DIR]
# Env: ACCEL_BUILD_DIR (default build; the `accel` binary is $ACCEL_BUILD_DIR/bin/accel),
#      REF_PYTHON (default .venv-ref/bin/python), ACCEL_COMPARE_MANUAL_LAUNCH=1 to start accel's
#      2 processes with RANK/WORLD_SIZE/... set by this script instead of `accel launch`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
accel="${ACCEL_BUILD_DIR:-$root/build}/bin/accel"
py="${REF_PYTHON:-$root/.venv-ref/bin/python}"
hf="$root/bench/compare_hf/hf_precision_step.py"

rounds=3 precisions="no,bf16" procs="1,2" config="all-MiniLM-L6-v2" seq=256 batch=16 steps=5 warmup=1
threads="$(nproc)" out=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --precisions) precisions="$2"; shift 2 ;;
    --procs) procs="$2"; shift 2 ;;
    --config) config="$2"; shift 2 ;;
    --seq_len) seq="$2"; shift 2 ;;
    --batch_size) batch="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ -x "$accel" ]] || { echo "run.sh: $accel not found; build accel_cli or set ACCEL_BUILD_DIR" >&2; exit 2; }
[[ -x "$py" ]] || { echo "run.sh: $py not found; run scripts/setup-reference.sh or set REF_PYTHON" >&2; exit 2; }
out="${out:-$(mktemp -d -t accel-compare-hf.XXXXXX)}"
mkdir -p "$out"
common=(--config "$config" --seq_len "$seq" --batch_size "$batch" --steps "$steps" --warmup "$warmup" --lr 5e-5 --seed 0)

use_launch=1
if [[ "${ACCEL_COMPARE_MANUAL_LAUNCH:-0}" == 1 ]] || ! "$accel" launch --help >/dev/null 2>&1; then use_launch=0; fi

free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# ours PRECISION NPROC THREADS_PER_PROC JSON
ours() {
  local p="$1" np="$2" t="$3" json="$4"
  local args=(bench precision --single "$p" --json-out "$json" "${common[@]}" --num_threads "$t" --cpu --no_progress)
  if [[ "$np" == 1 ]]; then
    OMP_NUM_THREADS="$t" "$accel" "${args[@]}"
  elif [[ "$use_launch" == 1 ]]; then
    OMP_NUM_THREADS="$t" "$accel" launch -q --cpu --num_processes "$np" --num_cpu_threads_per_process "$t" \
      "$accel" "${args[@]}"
  else
    local port pids=() r
    port="$(free_port)"
    for ((r = 0; r < np; r++)); do
      RANK=$r LOCAL_RANK=$r WORLD_SIZE=$np LOCAL_WORLD_SIZE=$np MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
        ACCELERATE_USE_CPU=True OMP_NUM_THREADS="$t" "$accel" "${args[@]}" &
      pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid"; done
  fi
}

# theirs PRECISION NPROC THREADS_PER_PROC JSON
theirs() {
  local p="$1" np="$2" t="$3" json="$4"
  local args=("${common[@]}" --precision "$p" --num_threads "$t" --json-out "$json")
  if [[ "$np" == 1 ]]; then
    OMP_NUM_THREADS="$t" ACCELERATE_USE_CPU=1 "$py" "$hf" "${args[@]}"
  else
    OMP_NUM_THREADS="$t" ACCELERATE_USE_CPU=1 "$py" -m torch.distributed.run --nproc_per_node "$np" \
      --master_addr 127.0.0.1 --master_port "$(free_port)" "$hf" "${args[@]}"
  fi
}

echo "compare_hf: $config, batch $batch x seq $seq, $steps steps after $warmup warm-up, precisions $precisions," \
     "processes $procs, $threads threads in all, $rounds rounds; accel 2-process start: $([[ $use_launch == 1 ]] && echo 'accel launch' || echo 'RANK/WORLD_SIZE env')"
echo "results in $out"
IFS=, read -ra plist <<< "$precisions"
IFS=, read -ra nlist <<< "$procs"
for p in "${plist[@]}"; do
  for np in "${nlist[@]}"; do
    t=$(( threads / np )); (( t >= 1 )) || t=1
    for ((i = 1; i <= rounds; i++)); do
      # Alternate which side goes first, so slow drift of the machine hits both alike.
      if (( i % 2 == 1 )); then order=(ours theirs); else order=(theirs ours); fi
      for side in "${order[@]}"; do
        json="$out/${side}_${p}_np${np}_r${i}.json"
        echo "  round $i/$rounds: $side, $p, $np process(es) x $t thread(s)" >&2
        "$side" "$p" "$np" "$t" "$json" >"$out/${side}_${p}_np${np}_r${i}.log" 2>&1 ||
          { echo "    $side failed; log: $out/${side}_${p}_np${np}_r${i}.log" >&2; tail -5 "$out/${side}_${p}_np${np}_r${i}.log" >&2; }
      done
    done
  done
done

"$py" - "$out" "$precisions" "$procs" <<'PY'
import glob, json, os, statistics, sys
out, precisions, procs = sys.argv[1], sys.argv[2].split(","), sys.argv[3].split(",")
def load(side, p, np):
    rs = []
    for f in sorted(glob.glob(os.path.join(out, f"{side}_{p}_np{np}_r*.json"))):
        with open(f) as fh:
            rs.append((f.rsplit("_r", 1)[1], json.load(fh)))
    return dict(rs)
rows, summary = [], []
for p in precisions:
    for np in procs:
        ours, theirs = load("ours", p, np), load("theirs", p, np)
        rounds = sorted(set(ours) & set(theirs))
        if not rounds:
            rows.append(f"{'fp32' if p == 'no' else p:<6} {np:>5}   no complete round (see the logs in {out})")
            continue
        o_sps = [ours[r]["samples_per_s"] for r in rounds]; t_sps = [theirs[r]["samples_per_s"] for r in rounds]
        o_rss = [ours[r]["peak_rss_bytes"] / 2**20 for r in rounds]; t_rss = [theirs[r]["peak_rss_bytes"] / 2**20 for r in rounds]
        sp = statistics.median(a / b for a, b in zip(o_sps, t_sps))
        mr = statistics.median(a / b for a, b in zip(o_rss, t_rss))
        o_loss = statistics.median(ours[r]["loss_last"] for r in rounds); t_loss = statistics.median(theirs[r]["loss_last"] for r in rounds)
        rows.append(f"{'fp32' if p == 'no' else p:<6} {np:>5} {statistics.median(o_sps):>11.2f} {statistics.median(t_sps):>11.2f} "
                    f"{sp:>8.3f} {statistics.median(o_rss):>9.0f} {statistics.median(t_rss):>9.0f} {mr:>8.3f} "
                    f"{o_loss:>7.3f} {t_loss:>7.3f} {len(rounds):>3}")
        summary.append(dict(precision=p, processes=int(np), rounds=len(rounds),
                            accel_samples_per_s=o_sps, hf_samples_per_s=t_sps, throughput_ratio_median=sp,
                            accel_peak_rss_mib=o_rss, hf_peak_rss_mib=t_rss, rss_ratio_median=mr))
print("\nours = accel, theirs = Hugging Face accelerate + transformers (medians over rounds; ratios are medians of per-round ratios)")
print(f"{'prec':<6} {'procs':>5} {'accel sps':>11} {'HF sps':>11} {'speed':>8} {'accel MiB':>9} {'HF MiB':>9} {'RSS':>8} "
      f"{'loss A':>7} {'loss H':>7} {'n':>3}")
print("\n".join(rows))
print("speed = accel/HF samples per second (> 1: accel faster); RSS = accel/HF peak resident memory of rank 0 (< 1: accel smaller)")
with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump(summary, f, indent=2)
print(f"summary: {os.path.join(out, 'summary.json')}")
PY

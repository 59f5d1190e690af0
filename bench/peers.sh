#!/usr/bin/env bash
# Measures mmadac against its peers on the mid-size model in one run and
# writes the results to OUT_DIR (default out/bench-peers):
#
#   1. PyTorch eager (bench/torch_text_bench.py), 2 passive OpenMP threads
#      by default: in float32, and in bfloat16, the precision upstream
#      deploys, which oneDNN runs on AMX where the CPU has it;
#   2. ONNX Runtime running the torch.onnx.export file of the same
#      checkpoint (bench/export_onnx.py), driven by mmadac's Go sampler with
#      full logits every step (`mmadac bench --onnx`);
#   3. mmadac with the default pipeline on ONNX Runtime and on the
#      interpreter;
#   4. the opt-in modes (--parallel-threshold, --stop-at-eos, both block
#      caches) against exact decoding, on the mid-size model and on the
#      golden tiny model's cases.
#
# Every peer runs the text scenario's sequence (prompt 64 + gen 256, block
# 32). mmadac on ONNX Runtime runs all FULL_STEPS steps; the slow peers run
# fewer steps with the same per-step work (same sequence length), and the
# table scales their per-step numbers to FULL_STEPS. The load average is
# recorded before every run.
#
# Usage: bench/peers.sh [OUT_DIR]
# Environment: FULL_STEPS (256), SHORT_STEPS (32: torch and the naive
# export), INTERP_STEPS (8), MMADAC_BIN (default: built from ./cmd/mmadac),
# SKIP_INSTALL=1 to skip the install steps, SUMMARY_ONLY=1 to print the
# table again from the JSON files of an earlier run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=${1:-$root/out/bench-peers}
full=${FULL_STEPS:-256}
short=${SHORT_STEPS:-32}
interp=${INTERP_STEPS:-8}
py=/usr/bin/python3
mkdir -p "$out"
log() { echo "peers: $*" >&2; }

# Install steps: Debian's torch, numpy, onnx and OpenBLAS, then ONNX
# Runtime from the onnxruntime-node npm package (scripts/setup.sh).
if [ "${SUMMARY_ONLY:-0}" != 1 ]; then
if [ "${SKIP_INSTALL:-0}" != 1 ]; then
  bash bench/setup-peers.sh
  bash scripts/setup.sh
fi

bin=${MMADAC_BIN:-}
if [ -z "$bin" ]; then
  bin=$out/mmadac
  log "building $bin"
  go build -o "$bin" ./cmd/mmadac
fi

ckpt=$out/mmada-mid
onnx=$out/mmada-mid.onnx
[ -f "$ckpt/model.safetensors" ] || $py bench/make_random_ckpt.py "$ckpt"
[ -f "$onnx" ] || $py bench/export_onnx.py "$ckpt" "$onnx"

text=(--scenario text --prompt-length 64 --gen-length 256 --block-length 32)
# loadavg NAME: records the load average before run NAME.
loadavg() { echo "{\"run\": \"$1\", \"uptime\": \"$(uptime)\"}" >> "$out/load.jsonl"; }
: > "$out/load.jsonl"

loadavg peak
"$bin" bench --model "$ckpt" "${text[@]}" --steps "$full" --backend ort --json --plot "$out/mmadac-ort.svg" > "$out/mmadac-ort.json"
peak=$($py -c 'import json,sys; print(json.load(open(sys.argv[1]))["peak"]["gflops"])' "$out/mmadac-ort.json")
log "mmadac ort done; peak $peak GFLOP/s"

loadavg naive-ort
"$bin" bench --model "$ckpt" --onnx "$onnx" --label "naive export ort" "${text[@]}" --steps "$short" \
  --peak-gflops "$peak" --json > "$out/naive-ort.json"

loadavg torch
$py bench/torch_text_bench.py --model "$ckpt" --prompt-len 64 --gen-length 256 --block-length 32 \
  --steps "$short" > "$out/torch.json"
loadavg torch-bf16
$py bench/torch_text_bench.py --model "$ckpt" --prompt-len 64 --gen-length 256 --block-length 32 \
  --steps "$short" --dtype bfloat16 > "$out/torch-bf16.json"

loadavg interp
"$bin" bench --model "$ckpt" "${text[@]}" --steps "$interp" --backend interp --peak-gflops "$peak" \
  --json > "$out/mmadac-interp.json"

loadavg threshold
"$bin" bench --model "$ckpt" "${text[@]}" --steps "$full" --backend ort --peak-gflops "$peak" \
  --parallel-threshold 0.9 --json > "$out/mode-threshold.json"
loadavg stop-at-eos
"$bin" bench --model "$ckpt" "${text[@]}" --steps "$full" --backend ort --peak-gflops "$peak" \
  --stop-at-eos --json > "$out/mode-eos.json"
loadavg block-cache-dual
"$bin" bench --model "$ckpt" "${text[@]}" --steps "$full" --backend ort --peak-gflops "$peak" \
  --block-cache=dual --json > "$out/mode-cache-dual.json"
loadavg block-cache-prefix
"$bin" bench --model "$ckpt" "${text[@]}" --steps "$full" --backend ort --peak-gflops "$peak" \
  --block-cache=prefix --json > "$out/mode-cache-prefix.json"
for mode in "--parallel-threshold 0.9" "--stop-at-eos" "--block-cache=dual" "--block-cache=prefix"; do
  name=golden-${mode#--}; name=${name%% *}; name=${name/=/-}
  # shellcheck disable=SC2086
  "$bin" bench --model testdata/upstream-tiny/mmada --backend ort $mode \
    --cases testdata/upstream-tiny/cases.json --json > "$out/$name.json"
done
fi

$py - "$out" "$full" <<'EOF'
import json, sys, os
out, full = sys.argv[1], int(sys.argv[2])
load = {}
for line in open(os.path.join(out, "load.jsonl")):
    rec = json.loads(line)
    load[rec["run"]] = rec["uptime"].split("load average:")[-1].strip()

def mm(name):
    return json.load(open(os.path.join(out, name)))

ort = mm("mmadac-ort.json")
peak = ort["peak"]["gflops"]
rows = []
def add(label, res, run):
    est = res["step_ms_median"] * full / 1000
    rows.append((label, res["steps"], res["seconds"], res["step_ms_median"], res["step_ms_p90"], est,
                 res.get("gflops", 0), 100 * res.get("gflops", 0) / peak, res["bytes_to_go_per_step"], load[run]))
add("mmadac, ONNX Runtime, default pipeline", ort["results"][0], "peak")
add("naive torch.onnx.export on ONNX Runtime, Go sampler", mm("naive-ort.json")["results"][0], "naive-ort")
def add_torch(label, name, run):
    t = mm(name)
    rows.append((label % t["torch_version"], t["steps"], t["seconds"], t["ms_per_step_median"], t["ms_per_step_p90"],
                 t["ms_per_step_median"] * full / 1000, 0, 0, 0, load[run]))
add_torch("PyTorch eager %s, float32", "torch.json", "torch")
# Runs from before the bfloat16 peer have no file for it.
if os.path.exists(os.path.join(out, "torch-bf16.json")):
    add_torch("PyTorch eager %s, bfloat16", "torch-bf16.json", "torch-bf16")
add("mmadac, interpreter, default pipeline", mm("mmadac-interp.json")["results"][0], "interp")
print("| peer | steps run | seconds | ms/step median | ms/step p90 | median x %d steps (s) | GFLOP/s | %% of peak | bytes to Go per step | load (1, 5, 15 min) |" % full)
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for r in rows:
    g = "%.0f" % r[6] if r[6] else "-"
    p = "%.0f%%" % r[7] if r[7] else "-"
    b = "%d" % r[8] if r[8] else "-"
    print("| %s | %d | %.1f | %.1f | %.1f | %.1f | %s | %s | %s | %s |" % (r[0], r[1], r[2], r[3], r[4], r[5], g, p, b, r[9]))
print()
print("peak: %.1f GFLOP/s (%s)" % (peak, ort["peak"]["method"]))
for name in ("mode-threshold.json", "mode-eos.json", "mode-cache-dual.json", "mode-cache-prefix.json"):
    for res in mm(name)["results"]:
        a = res.get("agreement")
        if a:
            print("mid-size %s: %d steps against %d exact (%.2fx by steps; %.2fx by wall time, which load shifts), %.1f%% of %d positions equal exact decoding" % (
                res["mode"], a["steps"], a["exact_steps"], a["exact_steps"] / a["steps"], a["speed_up"], 100 * a["fraction"], a["positions"]))
for name in ("golden-parallel-threshold.json", "golden-stop-at-eos.json", "golden-block-cache-dual.json", "golden-block-cache-prefix.json"):
    cases = mm(name)["cases"]
    eq = sum(c["equal"] for c in cases); n = sum(c["positions"] for c in cases)
    st = sum(c["steps"] for c in cases); ex = sum(c["exact_steps"] for c in cases)
    print("golden %s: %d steps against %d exact, %.1f%% of %d positions equal; per case: %s" % (
        name[7:-5], st, ex, 100 * eq / n, n,
        ", ".join("%s %d/%d steps %.0f%%" % (c["name"], c["steps"], c["exact_steps"], 100 * c["fraction"]) for c in cases)))
EOF

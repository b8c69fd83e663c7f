#!/usr/bin/env bash
# Train the embedded default world from nothing on a 2-core CPU: about 2.5 h for the world (issue 6), 55 min more for
# the world memory's depth network (issue 24), about 65 min for the start picture's ground shape and 8 for its objects
# (issue 24), the decoder's grain (issue 25, 14 min) and, where there is a GPU, the one-forward-per-chunk stage
# (issue 25):
#   bash scripts/train_default_world.sh [OUT]        # OUT defaults to runs/recipe; the bundle is OUT/default_world.safetensors
# Every stage resumes from its own checkpoint, and a finished stage is skipped, so the script can be stopped and run
# again. OUT/times.tsv gets one line per stage run (stage, seconds, exit status): summing the seconds column gives the
# training time spent, over any number of runs. Measured on the 2-core VM (2026-12-03, benchmarks/RESULTS.md): data
# 10.4 + 9.1 min, VAE 8.1, world 29.5, world2 64.3, roll 22.1, decoder 6.7: 150.1 minutes in all. The world memory's
# depth network (issue 24) adds about 55 min: its data (the views exact, through the VAE and as the model just trained
# generates them, with exact depth: 16 min for 800 one-chunk walks) and 8000 steps (38 min; both on the AVX-512 VM).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/recipe}
mkdir -p "$OUT"
train() { python3 launch.py train "$@"; }

stage() {  # stage NAME DONE_FILE COMMAND...: run COMMAND unless DONE_FILE exists; time it into times.tsv
  local name=$1 done_file=$2; shift 2
  if [ -e "$done_file" ]; then echo "== $name: done ($done_file)"; return 0; fi
  echo "== $name"
  local t0 rc=0
  t0=$(date +%s)
  "$@" || rc=$?
  printf '%s\t%s\t%s\n' "$name" "$(( $(date +%s) - t0 ))" "$rc" >> "$OUT/times.tsv"
  return "$rc"
}

# 400 short clips (7 latents: 2 chunks) and 120 long ones (19 latents: 6 chunks) of human-like walks
stage data "$OUT/data/shard_0007.npz" train data --dir "$OUT/data" --clips 400
stage long "$OUT/long/shard_0002.npz" train data --dir "$OUT/long" --clips 120 --chunks 6 --shard-size 40 --seed 11
# the causal VAE
stage vae "$OUT/vae/vae_final.pt" train vae --dir "$OUT/data" --out "$OUT/vae" --steps 3000
# the world model: flow matching on one chunk at a time, then its one-step generator's input (sigma-one) and its own
# generations as context (self-context), then free-running streamed rollouts as the engine runs (EMA weights)
stage world "$OUT/world/world_final.pt" train world --dir "$OUT/data" --vae "$OUT/vae" --out "$OUT/world" \
  --steps 600 --lr 3e-4 --warmup 100
stage world2 "$OUT/world2/world_final.pt" train world --dir "$OUT/data" --vae "$OUT/vae" --out "$OUT/world2" \
  --init "$OUT/world" --steps 1300 --lr 2e-4 --sigma-one 0.5 --self-context 0.5
stage roll "$OUT/roll/world_final.pt" train world --dir "$OUT/long" --vae "$OUT/vae" --out "$OUT/roll" \
  --init "$OUT/world2" --rollout --self-context 1.0 --sigma-one 1.0 --lr 1e-4 --warmup 20 --steps 100 --batch 4 \
  --ema 0.99
# the VAE decoder tuned on the model's own generations, then one bundle with the shipped sampler settings
stage decoder "$OUT/decoder/vae_final.pt" train decoder --dir "$OUT/long" --vae "$OUT/vae" --world "$OUT/roll" \
  --out "$OUT/decoder" --steps 600
SAMPLER='{"steps": 1, "shift": 8.0, "kind": "renoise", "reproject": 0.5, "reproject_radius": 0.25}'
stage bundle "$OUT/world_only.safetensors" train bundle --vae "$OUT/decoder" --world "$OUT/roll" \
  --out "$OUT/world_only.safetensors" --sampler "$SAMPLER"
# the world memory's depth network: views of new walks with their exact depth, as the picture, through the VAE and as
# that bundle generates them; then the bundle again, with it (the world memory on, its default settings)
# (800 short walks, one chunk each: 800 scenes, 7 views of each; 40-clip shards, ~50 s each on the AVX-512 VM)
stage depth-data "$OUT/depth_data/shard_0019.npz" train depth-data --out "$OUT/depth_data" --clips 800 \
  --shard-size 40 --chunks 1 --seed 11 --world "$OUT/world_only.safetensors"
stage depth "$OUT/depth/depth_final.pt" train depth --dir "$OUT/depth_data" --out "$OUT/depth" --steps 8000 \
  --fine 16 --median 5
# one forward per chunk (issue 25, the sixth default): the model reads the previous chunk's latents beside its noise
# and its one forward writes the cache; streamed 6-chunk clips, 3 in 4 fed their own predictions. It needs a GPU to be
# practical: RECYCLE=auto (default) runs it on CUDA when there is one and skips it otherwise (the bundle is then the
# two-pass model, as the fifth default); RECYCLE=cpu forces the CPU (about 17 h on two cores, projected from 10.8 s a
# step at batch 2), RECYCLE=off skips it. The shipped weights came from 356 steps on one H200 (about 9 min, two runs:
# benchmarks/RESULTS.md, "One forward per chunk").
RECYCLE=${RECYCLE:-auto}
if [ "$RECYCLE" = auto ]; then
  RECYCLE=$(python3 -c 'import torch; print("cuda" if torch.cuda.is_available() else "off")')
fi
WORLD="$OUT/roll"
if [ "$RECYCLE" != off ]; then
  stage long23 "$OUT/long23/shard_0001.npz" train data --dir "$OUT/long23" --clips 80 --chunks 6 --shard-size 40 --seed 23
  stage long29 "$OUT/long29/shard_0001.npz" train data --dir "$OUT/long29" --clips 80 --chunks 6 --shard-size 40 --seed 29
  stage recycle "$OUT/recycle/world_final.pt" train world --dir "$OUT/long23" --dir "$OUT/long29" --vae "$OUT/vae" \
    --out "$OUT/recycle" --init "$OUT/roll" --recycle --self-context 0.75 --sigma-one 0.75 --lr 1e-4 --warmup 50 \
    --batch 32 --steps 360 --ema 0.995 --device "$RECYCLE"
  WORLD="$OUT/recycle"
fi
# the decoder's world-anchored grain (issue 25, the seventh default): noise fixed to the world's directions enters
# after each upsampling (world/grain.py), and the decoder learns to draw texture from it, asked by a per-tile spectrum
# term for as much fine detail as the exact frames have (no discriminators); 1500 steps, about 14 min on two cores
stage grain "$OUT/grain/vae_final.pt" train decoder-adv --dir "$OUT/long" --vae "$OUT/decoder" --world "$WORLD" \
  --out "$OUT/grain" --steps 1500 --batch 4 --crop 128 --adv-weight 0 --d-warmup 100000 --d-width 16 \
  --spectral-weight 3 --l1 0 --lr 3e-4 --grain 0.3
# the start picture's ground shape (issue 24, the ninth default): 6000 level start pictures at 60° and 2000 at 40-90°
# with their terrain's exact depth, 200 held-out ones of each (0.3 s a picture on one core, two workers: about 25 min),
# then 8000 steps (38 min on the AVX-512 VM; world/train/ground_shape.py)
stage ground-data "$OUT/ground_data/shard_0029.npz" train ground-data --out "$OUT/ground_data" --pictures 6000
stage ground-fov "$OUT/ground_fov/shard_0009.npz" train ground-data --out "$OUT/ground_fov" --pictures 2000 \
  --fov 40 90 --seed 1
stage ground-val "$OUT/ground_val/shard_0000.npz" train ground-data --out "$OUT/ground_val" --pictures 200 --held-out
stage ground-val-fov "$OUT/ground_val_fov/shard_0000.npz" train ground-data --out "$OUT/ground_val_fov" \
  --pictures 200 --held-out --fov 40 90 --seed 1
stage ground-shape "$OUT/ground/ground_final.pt" train ground-shape --dir "$OUT/ground_data" --dir "$OUT/ground_fov" \
  --eval "$OUT/ground_val" --eval "$OUT/ground_val_fov" --out "$OUT/ground" --steps 8000
# the start picture's objects (issue 24, the tenth default): a network for their outline, trained on the same
# pictures (their shards keep each picture's objects; the shipped one saw the first 3000 at 60° and the first 1000 at
# 40-90°, rendered again with their objects), 4000 steps (7.6 min on the AVX-512 VM; world/train/object_mask.py)
stage object-mask "$OUT/objects/object_final.pt" train object-mask --dir "$OUT/ground_data" --dir "$OUT/ground_fov" \
  --eval "$OUT/ground_val" --out "$OUT/objects" --steps 4000
stage bundle-depth "$OUT/default_world.safetensors" train bundle --vae "$OUT/grain" --world "$WORLD" \
  --depth "$OUT/depth/depth_final.pt" --ground-shape "$OUT/ground" --object-mask "$OUT/objects" \
  --out "$OUT/default_world.safetensors" \
  --sampler "$SAMPLER"
awk -F'\t' '{s += $2} END {printf "training time over all runs: %.1f min (world 150 min, depth about 55, ground shape about 65, objects about 8)\n", s / 60}' "$OUT/times.tsv"

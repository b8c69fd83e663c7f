"""Training the embedded default world on procedural worlds, one stage per file (flags: worldwalk/app/train_args.py).

    python launch.py train data  --dir runs/data --clips 800            # render clips (resumable, sharded)
    python launch.py train vae   --dir runs/data --out runs/vae --steps 3000
    python launch.py train world --dir runs/data --vae runs/vae --out runs/world --steps 4000
    python launch.py train data  --dir runs/long --clips 320 --chunks 6  # longer clips: 19 latents = 73 frames
    python launch.py train world --dir runs/long --dir runs/data --vae runs/vae --out runs/roll --init runs/world \
        --rollout --self-context 0.5 --sigma-one 0.5 --lr 1e-4 --warmup 30 --steps 500
    python launch.py train decoder --dir runs/data --vae runs/vae --world runs/world --out runs/decoder --steps 600
    python launch.py train depth-data --out runs/depth_data --clips 240 --world assets/default_world.safetensors
    python launch.py train depth --dir runs/depth_data --out runs/depth --steps 3000
    python launch.py train ground-data --out runs/ground_data --pictures 6000
    python launch.py train ground-shape --dir runs/ground_data --out runs/ground --steps 8000
    python launch.py train bundle --vae runs/decoder --world runs/roll --out assets/default_world.safetensors

(scripts/train_default_world.sh runs them all from nothing.) Every stage resumes from its last checkpoint in --out
(weights, optimiser, step, RNG), shows a progress bar and appends its losses to <out>/log.jsonl.

    common.py    what the stages share: clip shards in memory, checkpoints, the log, the learning-rate schedule,
                 latents and camera tensors, chunk bookkeeping, loading trained runs, the engine's one-step generation
    data.py      `data`: render clips of procedural worlds into shards
    vae.py       `vae`: the causal VAE
    world.py     `world`: the world model on VAE latents (chunk objective or streamed rollouts)
    decoder.py   `decoder`: the VAE decoder fine-tuned on the world model's own generations
    decoder_adv.py `decoder-adv`: the decoder against discriminators, a per-tile spectrum term, world-anchored grain
    world_adv.py `world-adv`: adversarial post-training of the one-step generator on its own streamed rollouts
    depth.py     `depth-data`, `depth`: the world memory's depth network on views with exact depth
    ground_shape.py `ground-data`, `ground-shape`: the start picture's ground-shape network (the terrain's waves)
    object_mask.py `object-mask`: the start picture's object network (objects stood on their feet)
    bundle.py    `bundle`: VAE + world model (+ depth network) into one .safetensors file

Each stage is `cmd_<stage>(a) -> int` over the parsed flags; the flags themselves live in the app room.
"""

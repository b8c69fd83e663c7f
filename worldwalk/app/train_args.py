"""Command-line flags of `launch.py train <stage>`: one subcommand per stage of worldwalk/world/train/."""
from __future__ import annotations

from worldwalk.world.train.bundle import cmd_bundle
from worldwalk.world.train.data import cmd_data
from worldwalk.world.train.decoder import cmd_decoder
from worldwalk.world.train.decoder_adv import cmd_decoder_adv
from worldwalk.world.train.depth import cmd_depth, cmd_depth_data
from worldwalk.world.train.ground_shape import cmd_ground_data, cmd_ground_shape
from worldwalk.world.train.object_mask import cmd_object_mask
from worldwalk.world.train.vae import cmd_vae
from worldwalk.world.train.world import cmd_world
from worldwalk.world.train.world_adv import cmd_world_adv


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train the embedded default world on procedural worlds")
    tsub = p.add_subparsers(dest="stage", required=True)
    d = tsub.add_parser("data", help="render training clips")
    d.add_argument("--dir", required=True)
    d.add_argument("--clips", type=int, default=800)
    d.add_argument("--preset", default="tiny")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--shard-size", type=int, default=50, help="clips per shard file")
    d.add_argument("--chunks", type=int, default=2, help="chunks per clip (2: 7 latents = 25 frames at stride 4)")
    d.add_argument("--workers", type=int, default=1, help="clips rendered at a time, one process each")
    d.set_defaults(func=cmd_data)
    v = tsub.add_parser("vae", help="train the causal VAE")
    v.add_argument("--dir", required=True)
    v.add_argument("--out", required=True)
    v.add_argument("--vae-preset", default="tiny-vae")
    v.add_argument("--steps", type=int, default=3000)
    v.add_argument("--batch", type=int, default=2)
    v.add_argument("--crop", type=int, default=128, help="square crop size in pixels (convolutions see any size)")
    v.add_argument("--latents", type=int, default=2, help="latent frames per training window")
    v.add_argument("--lr", type=float, default=1e-3)
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--save-every", type=int, default=200)
    v.set_defaults(func=cmd_vae)
    w = tsub.add_parser("world", help="train the world model on VAE latents")
    w.add_argument("--dir", required=True, action="append",
                   help="clip shards (repeat for several sets, e.g. short and long clips)")
    w.add_argument("--vae", required=True)
    w.add_argument("--out", required=True)
    w.add_argument("--preset", default="tiny")
    w.add_argument("--steps", type=int, default=4000)
    w.add_argument("--batch", type=int, default=4)
    w.add_argument("--lr", type=float, default=3e-4)
    w.add_argument("--warmup", type=int, default=200, help="steps of linear learning-rate warm-up")
    w.add_argument("--sigma-shift", type=float, default=3.0)
    w.add_argument("--init", default=None, help="start from the model of this world bundle (.safetensors) or world run (its world_final.pt)")
    w.add_argument("--sigma-one", type=float, default=0.0,
                   help="fraction of samples noised at sigma = 1 exactly (the one-step generator's input)")
    w.add_argument("--self-context", type=float, default=0.0,
                   help="fraction of later-chunk steps whose context is the model's own one-step generation "
                        "(--rollout: of samples that run free, every chunk at sigma = 1 on their own generations)")
    w.add_argument("--rollout", action="store_true",
                   help="stream whole clips chunk by chunk through the engine's cache; every chunk's loss counts")
    w.add_argument("--ema", type=float, default=0.0,
                   help="keep an exponential moving average of the weights with this decay (e.g. 0.99) and save it "
                        "as the result (0: off)")
    w.add_argument("--max-chunks", type=int, default=None,
                   help="one-chunk objective: draw the target from the clip's first N chunks only (a later chunk's "
                        "softmax keys would reach past the engine's sink + one-chunk window)")
    w.add_argument("--softmax-every", type=int, default=None,
                   help="override the preset's softmax block spacing; with --init, GDN blocks that turn softmax keep "
                        "their shared weights")
    w.add_argument("--pixel-loss", type=float, default=0.0,
                   help="--rollout: add this weight x the pixel MSE of each chunk's prediction decoded by --vae's "
                        "frozen decoder against the exact frames (0: off)")
    w.add_argument("--pixel-crop", type=int, default=128, help="--pixel-loss: square crop in pixels")
    w.add_argument("--recycle", action="store_true",
                   help="train for one forward per chunk: the model reads the previous chunk's latents beside its "
                        "noise and its one forward writes the cache (with --self-context: the share of samples fed "
                        "their own predictions)")
    w.add_argument("--minutes", type=float, default=None,
                   help="stop after this much training time, saving the state (resumable) and the weights")
    w.add_argument("--device", default="cpu", help="cpu, or cuda (under torchrun: each process its local GPU, NCCL)")
    w.add_argument("--bf16", action="store_true")
    w.add_argument("--seed", type=int, default=0)
    w.add_argument("--save-every", type=int, default=100)
    w.set_defaults(func=cmd_world)
    t = tsub.add_parser("decoder", help="fine-tune the VAE decoder on the world model's own generations")
    t.add_argument("--dir", required=True, action="append", help="clip shards (repeat for several sets)")
    t.add_argument("--vae", required=True, help="a VAE run (vae_final.pt) or a world bundle (.safetensors)")
    t.add_argument("--world", required=True,
                   help="the world run (world_final.pt and its latents.pt) or a world bundle (.safetensors)")
    t.add_argument("--out", required=True)
    t.add_argument("--steps", type=int, default=600)
    t.add_argument("--batch", type=int, default=2)
    t.add_argument("--crop", type=int, default=128)
    t.add_argument("--latents", type=int, default=4,
                   help="latent frames scored per sample (a window of the clip; 0: the whole clip)")
    t.add_argument("--l1", type=float, default=0.5,
                   help="weight of the L1 term beside the MSE (small: the PSNR-optimal mean, large: sharper medians)")
    t.add_argument("--real-fraction", type=float, default=0.25, help="steps on encoded (not generated) latents")
    t.add_argument("--lr", type=float, default=2e-4)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--save-every", type=int, default=100)
    t.set_defaults(func=cmd_decoder)
    ta = tsub.add_parser("decoder-adv", help="fine-tune the VAE decoder against frame and clip discriminators "
                                             "(world/train/decoder_adv.py)")
    ta.add_argument("--dir", required=True, action="append", help="clip shards (repeat for several sets)")
    ta.add_argument("--vae", required=True, help="a VAE run (vae_final.pt) or a world bundle (.safetensors)")
    ta.add_argument("--world", required=True, help="the world run or bundle whose one-step generations it decodes")
    ta.add_argument("--out", required=True)
    ta.add_argument("--steps", type=int, default=1500)
    ta.add_argument("--batch", type=int, default=4)
    ta.add_argument("--crop", type=int, default=128)
    ta.add_argument("--latents", type=int, default=2, help="latent frames scored per sample")
    ta.add_argument("--real-fraction", type=float, default=0.5, help="steps on encoded (not generated) latents")
    ta.add_argument("--latent-noise", type=float, default=0.05, help="noise added to encoded latents")
    ta.add_argument("--adv-weight", type=float, default=0.5, help="x the gradient-balanced adversarial weight")
    ta.add_argument("--lowpass-weight", type=float, default=2.0,
                    help="L1 at 1/8 resolution on every step (holds colour against the adversarial term; 0: off)")
    ta.add_argument("--l1", type=float, default=1.0,
                    help="weight of the L1 beside the MSE on encoded latents (L1 favours sparse errors: dots)")
    ta.add_argument("--spectral-weight", type=float, default=0.0,
                    help="x an L1 between log amplitude spectra of decoded and exact frames, per 32-px tile (0: off)")
    ta.add_argument("--fm-weight", type=float, default=1.0, help="feature matching weight")
    ta.add_argument("--d-warmup", type=int, default=100, help="steps the discriminators train alone first")
    ta.add_argument("--d-width", type=int, default=32)
    ta.add_argument("--r1", type=float, default=0.5, help="R1 gamma (0: off)")
    ta.add_argument("--r1-every", type=int, default=4)
    ta.add_argument("--lr", type=float, default=1e-4)
    ta.add_argument("--d-lr", type=float, default=2e-4)
    ta.add_argument("--minutes", type=float, default=None,
                    help="stop after this much training time, saving the state (resumable) and the decoder")
    ta.add_argument("--decoder-widths", default=None,
                    help="widen the decoder's upsampling stages first, e.g. 64,64,48,24 (starts decoding as before)")
    ta.add_argument("--grain", type=float, default=None,
                    help="give the decoder world-anchored grain inputs (world/grain.py) after each upsampling, their "
                         "scales starting at this value (a decoder that has them keeps its own)")
    ta.add_argument("--snapshot-every", type=int, default=0, help="also keep the VAE every N steps (vae_<step>.pt)")
    ta.add_argument("--device", default="cpu", help="cpu, or cuda")
    ta.add_argument("--seed", type=int, default=0)
    ta.add_argument("--save-every", type=int, default=100)
    ta.set_defaults(func=cmd_decoder_adv)
    wa = tsub.add_parser("world-adv", help="adversarial post-training of the one-step generator on its own streamed "
                                           "rollouts (world/train/world_adv.py)")
    wa.add_argument("--dir", required=True, action="append", help="clip shards (repeat for several sets)")
    wa.add_argument("--vae", required=True, help="the VAE (run or bundle) that encodes the clips")
    wa.add_argument("--world", required=True, help="the one-forward-per-chunk world run or bundle to start from")
    wa.add_argument("--out", required=True)
    wa.add_argument("--steps", type=int, default=600)
    wa.add_argument("--batch", type=int, default=4)
    wa.add_argument("--chunks", type=int, default=3, help="chunks streamed per clip")
    wa.add_argument("--adv-weight", type=float, default=0.05, help="x the hinge generator loss")
    wa.add_argument("--reg-weight", type=float, default=0.25,
                    help="x the squared error of the predicted latents against the clip's")
    wa.add_argument("--lowpass-weight", type=float, default=1.0,
                    help="x the same at 4 x 4 latent cells (layout and colour)")
    wa.add_argument("--sigma-one", type=float, default=0.5,
                    help="share of chunks started from pure noise (the others from the clip's latents noised at a "
                         "level in [--sigma-min, 1), as the world memory's guess)")
    wa.add_argument("--sigma-min", type=float, default=0.5)
    wa.add_argument("--adv-unseen-only", action="store_true",
                    help="the adversarial term on chunks started from pure noise only (those from a guess follow it)")
    wa.add_argument("--d-warmup", type=int, default=50, help="steps the discriminator trains alone first")
    wa.add_argument("--d-width", type=int, default=64)
    wa.add_argument("--r1", type=float, default=0.1, help="R1 gamma (0: off)")
    wa.add_argument("--r1-every", type=int, default=4)
    wa.add_argument("--lr", type=float, default=2e-5)
    wa.add_argument("--d-lr", type=float, default=2e-4)
    wa.add_argument("--ema", type=float, default=0.99, help="decay of the weight average saved as the result (0: off)")
    wa.add_argument("--minutes", type=float, default=None,
                    help="stop after this much training time, saving the state (resumable) and the weights")
    wa.add_argument("--bf16", action="store_true", help="the model's forward in bfloat16 (a CPU with native bf16, or a GPU)")
    wa.add_argument("--device", default="cpu", help="cpu, or cuda (one process)")
    wa.add_argument("--seed", type=int, default=0)
    wa.add_argument("--save-every", type=int, default=25)
    wa.add_argument("--snapshot-every", type=int, default=0,
                    help="also keep the (averaged) model every N steps (<out>/snapshot_<step>/world_final.pt)")
    wa.set_defaults(func=cmd_world_adv)
    b = tsub.add_parser("bundle", help="pack the trained VAE and model into one file")
    b.add_argument("--vae", required=True)
    b.add_argument("--world", required=True)
    b.add_argument("--out", required=True)
    b.add_argument("--sampler", default='{"steps": 4, "shift": 8.0, "kind": "renoise"}')
    b.add_argument("--depth", default=None, help="a depth run (depth_final.pt) or a bundle (.safetensors): the world memory's depth "
                        "network")
    b.add_argument("--memory", default="{}", help="with --depth: the world memory's settings (JSON, world/memory.py)")
    b.add_argument("--depth-median", type=int, default=None, help="with --depth: the depth network's median filter "
                                                                  "size (odd; 0: none; default: the network's own)")
    b.add_argument("--start-depth", default=None,
                   help="with --depth: the start picture's own depth network, a depth run or a bundle (its start "
                        "network where it has one)")
    b.add_argument("--ground-shape", default=None,
                   help="with --depth: the start picture's ground-shape network, a ground-shape run "
                        "(world/train/ground_shape.py) or a bundle that has one")
    b.add_argument("--object-mask", default=None,
                   help="with --depth: the start picture's object network, an object-mask run "
                        "(world/train/object_mask.py) or a bundle that has one")
    b.set_defaults(func=cmd_bundle)
    dd = tsub.add_parser("depth-data", help="render views with exact depth, through the VAE and as the world model "
                                            "generates them (world/train/depth.py)")
    dd.add_argument("--out", required=True)
    dd.add_argument("--clips", type=int, default=240)
    dd.add_argument("--world", default=None, help="the world bundle whose VAE and model make the blurry views "
                                                  "(required unless --start-only)")
    dd.add_argument("--start-only", action="store_true",
                    help="each walk's first frame alone (the start picture), exact only: data for the start picture's "
                         "own network (no --world needed)")
    dd.add_argument("--seed", type=int, default=0)
    dd.add_argument("--held-out", action="store_true", help="scenes the training data never uses (for evaluation)")
    dd.add_argument("--shard-size", type=int, default=20)
    dd.add_argument("--chunks", type=int, default=2, help="chunks of each walk (1 + chunks x frames a chunk frames, "
                                                          "every other one kept); fewer: more scenes for the time")
    dd.add_argument("--textures", choices=("plain", "rich"), default="plain",
                    help="rich: pictures on most surfaces (so a picture's own edges are not taken for depth edges)")
    dd.add_argument("--closeup", type=float, default=0.0,
                    help="the share of walks that start 0.4-2.5 m in front of an object, facing it (as a photograph "
                         "of something near is taken)")
    dd.set_defaults(func=cmd_depth_data)
    de = tsub.add_parser("depth", help="train the world memory's depth network (world/train/depth.py)")
    de.add_argument("--dir", required=True, action="append", help="depth-data folder (repeat for several sets)")
    de.add_argument("--out", required=True)
    de.add_argument("--steps", type=int, default=3000)
    de.add_argument("--batch", type=int, default=12)
    de.add_argument("--crop", type=int, default=128)
    de.add_argument("--lr", type=float, default=2e-3)
    de.add_argument("--seed", type=int, default=0)
    de.add_argument("--save-every", type=int, default=200)
    de.add_argument("--eval", default=None, help="a held-out depth-data folder: AbsRel and delta<1.25 at the end")
    de.add_argument("--widths", default=None, help="encoder channels per level, comma-separated (default: "
                                                   "world/depth.py's DepthConfig)")
    de.add_argument("--fine", type=int, default=0, help="channels of a full-resolution refinement stage (0: none)")
    de.add_argument("--median", type=int, default=0, help="a median filter of this odd size on the predicted log "
                                                          "depth (0: none; used by the evaluation and the app)")
    de.add_argument("--init", default=None, help="start from this depth run or bundle's network (a fresh --out "
                                                 "only; its --widths and --fine must match)")
    de.add_argument("--exact-only", action="store_true",
                    help="exact views only (the start picture's own network; start-only data has no others)")
    de.add_argument("--object-weight", type=float, default=0.0,
                    help="the L1 of object pixels (nearer than 0.8 x the level ground) counts 1 + this (0: all alike)")
    de.set_defaults(func=cmd_depth)
    gd = tsub.add_parser("ground-data", help="render start pictures with their terrain's depth (the ground-shape "
                                             "network's data, world/train/ground_shape.py)")
    gd.add_argument("--out", required=True)
    gd.add_argument("--pictures", type=int, default=6000)
    gd.add_argument("--held-out", action="store_true", help="scenes no training data uses (for evaluation)")
    gd.add_argument("--shard-size", type=int, default=200)
    gd.add_argument("--fov", type=float, nargs=2, default=(60.0, 60.0), metavar=("LOW", "HIGH"),
                    help="horizontal field of view in degrees, drawn uniformly from LOW to HIGH per picture")
    gd.add_argument("--seed", type=int, default=0)
    gd.add_argument("--workers", type=int, default=2, help="processes rendering shards side by side")
    gd.set_defaults(func=cmd_ground_data)
    gs = tsub.add_parser("ground-shape", help="train the start picture's ground-shape network "
                                              "(world/train/ground_shape.py)")
    gs.add_argument("--dir", required=True, action="append", help="ground-data folder (repeat for several sets)")
    gs.add_argument("--eval", default=None, action="append", help="a held-out ground-data folder: the ground's "
                                                                  "AbsRel every 500 steps")
    gs.add_argument("--out", required=True)
    gs.add_argument("--steps", type=int, default=8000)
    gs.add_argument("--batch", type=int, default=24)
    gs.add_argument("--lr", type=float, default=2e-3)
    gs.add_argument("--width", type=int, default=32, help="the network's channels")
    gs.add_argument("--seed", type=int, default=0)
    gs.set_defaults(func=cmd_ground_shape)
    om = tsub.add_parser("object-mask", help="train the start picture's object network, which stands objects on "
                                             "their feet (world/train/object_mask.py)")
    om.add_argument("--dir", required=True, action="append", help="ground-data folder (repeat for several sets)")
    om.add_argument("--eval", default=None, action="append", help="a held-out ground-data folder: the objects' IoU "
                                                                  "every 500 steps")
    om.add_argument("--out", required=True)
    om.add_argument("--steps", type=int, default=4000)
    om.add_argument("--batch", type=int, default=16)
    om.add_argument("--crop", type=int, default=128, help="square crops of this many pixels (a multiple of 16)")
    om.add_argument("--lr", type=float, default=2e-3)
    om.add_argument("--seed", type=int, default=0)
    om.set_defaults(func=cmd_object_mask)

"""world.official: the released SANA-WM files read from a local directory (both layouts), the LTX-2 VAE adapter with
streamed decoding, the Gemma-2 prompt path, fp8 weights, and `launch.py render --weights DIR` end to end, on small
synthetic releases of the same architecture (official tensor names, legacy tensors included, LTX-2 VAE strides 32/8,
a 2-layer Gemma-2 with a word-level tokenizer)."""
import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

pytest.importorskip("diffusers")
from diffusers import AutoencoderKLLTX2Video
from diffusers.pipelines.sana_wm.pipeline_sana_wm import DEFAULT_CHI_PROMPT, SanaWMPipeline
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import Gemma2Config, Gemma2ForCausalLM, PreTrainedTokenizerFast

from worldwalk.world.checkpoint import CheckpointError
from worldwalk.world.fp8 import is_quantized, weight_bytes
from worldwalk.world.model import WorldModel
from worldwalk.world.official import (OfficialError, encode_prompt, find_release, load_official, load_official_model,
                            load_official_vae, load_text_encoder)
from worldwalk.world.presets import get_preset

from test_oracle import random_camera

ROOT = Path(__file__).resolve().parents[2]
LATENT = 8
# the official architecture at a small size: same block pattern, legacy tensors, integer timesteps, LTX-2 strides
SMALL = dataclasses.replace(
    get_preset("sana-wm-1600m"), name="small-official", depth=4, hidden=64, head_dim=32, latent_channels=LATENT,
    caption_channels=32, resolution=(64, 96)).validate()


def small_vae(causal: bool = True, seed: int = 0) -> AutoencoderKLLTX2Video:
    torch.manual_seed(seed)
    ae = AutoencoderKLLTX2Video(
        latent_channels=LATENT, block_out_channels=(8, 16, 32, 32), decoder_block_out_channels=(16, 32, 64),
        layers_per_block=(1, 1, 1, 1, 1), decoder_layers_per_block=(1, 1, 1, 1), spatial_compression_ratio=32,
        temporal_compression_ratio=8, decoder_causal=causal, scaling_factor=0.9)
    ae.latents_mean.copy_(torch.randn(LATENT) * 0.1)
    ae.latents_std.copy_(torch.rand(LATENT) + 0.5)
    return ae.eval()


def small_state_dict(cfg=SMALL, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # init_weights leaves the convolutions' default init (global generator)
    sd = WorldModel(cfg).init_weights(g).state_dict()
    # make the zero-initialised camera / temporal injections non-trivial so loading errors would show
    return {k: (v + 0.01 * torch.randn(v.shape, generator=g)) if v.is_floating_point() else v for k, v in sd.items()}


def write_release(d: Path, layout: str, sd=None, cfg=SMALL, vae_dir: str | None = None, causal: bool = True) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    sd = small_state_dict(cfg) if sd is None else sd
    if layout == "streaming":
        (d / "sana_dit").mkdir(exist_ok=True)
        torch.save({"generator": {f"model.{k}": v for k, v in sd.items()}, "step": 1000, "epoch": 3},
                   d / "sana_dit" / "model.pt")
    else:
        (d / "dit").mkdir(exist_ok=True)
        full = dict(sd, pos_embed=torch.zeros(1, 4, cfg.hidden))  # the release carries one; ignored
        save_file({k: v.contiguous() for k, v in full.items()}, str(d / "dit" / "sana_wm_1600m_720p.safetensors"))
    vae_dir = vae_dir or ("ltx2_causal_vae" if layout == "streaming" else "vae")
    small_vae(causal).save_pretrained(str(d / vae_dir))
    if cfg.name != "sana-wm-1600m":
        (d / "worldwalk_config.json").write_text(json.dumps(cfg.to_dict()))
    return d


PROMPT = "a beach at dusk with palm trees"
SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>"]


def small_tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer over the chi prompt's words and a few more, adding <bos> like Gemma's; padding on the
    left by default, as Gemma's is (the release asks for the right)."""
    text = "\n".join(DEFAULT_CHI_PROMPT) + " " + PROMPT + " snow covered mountain"
    words = sorted(set(re.findall(r"\w+|[^\w\s]", text)))
    vocab = {w: i for i, w in enumerate(SPECIALS + words)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", vocab["<bos>"])])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
                                   unk_token="<unk>", padding_side="left")


def write_text_encoder(d: Path, hidden: int = SMALL.caption_channels, seed: int = 0) -> Path:
    """DIR/tokenizer and DIR/text_encoder: a 2-layer Gemma-2 of width `hidden` (the release's is Gemma-2-2B-it)."""
    tok = small_tokenizer()
    tok.save_pretrained(str(d / "tokenizer"))
    cfg = Gemma2Config(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                       num_attention_heads=2, num_key_value_heads=1, head_dim=16, pad_token_id=0, eos_token_id=1,
                       bos_token_id=2)
    torch.manual_seed(seed)
    Gemma2ForCausalLM(cfg).eval().save_pretrained(str(d / "text_encoder"))
    return d


def linked_release(d: Path, src: Path, *names: str) -> Path:
    """A release directory whose `names` are links to those of `src`."""
    d.mkdir(parents=True)
    for name in names:
        (d / name).symlink_to(src / name)
    return d


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    base = tmp_path_factory.mktemp("official")
    sd = small_state_dict()
    return {"sd": sd, "streaming": write_release(base / "streaming", "streaming", sd),
            "bidirectional": write_release(base / "bidirectional", "bidirectional", sd),
            "text": write_text_encoder(write_release(base / "text", "streaming", sd))}


# ------------------------------------------------------------------------------------------------------------ reading
@pytest.mark.parametrize("layout", ["streaming", "bidirectional"])
def test_both_layouts_load_strictly_onto_the_same_weights(releases, layout):
    files = find_release(releases[layout])
    assert files.layout == layout
    assert files.vae.name == ("ltx2_causal_vae" if layout == "streaming" else "vae")
    model = load_official_model(files)
    assert model.cfg == SMALL and next(model.parameters()).dtype == torch.float32  # float32 on CPU
    own = model.state_dict()
    assert set(own) == set(releases["sd"])
    assert all(torch.equal(own[k], releases["sd"][k]) for k in own)


def test_dtype_is_respected(releases):
    model = load_official_model(find_release(releases["streaming"]), dtype=torch.bfloat16)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}


def test_default_config_is_the_1600m_preset_and_a_small_checkpoint_is_rejected_up_front(releases, tmp_path):
    d = tmp_path / "r"
    d.mkdir()
    for name in ("sana_dit", "ltx2_causal_vae"):
        (d / name).symlink_to(releases["streaming"] / name)
    with pytest.raises(OfficialError) as e:
        load_official_model(find_release(d))
    msg = str(e.value)
    assert "is not the sana-wm-1600m shape" in msg and "depth 4 (expected 20)" in msg
    assert "hidden 64 (expected 2240)" in msg and "\n" not in msg


def test_missing_tensor_is_listed(releases, tmp_path):
    sd = dict(releases["sd"])
    del sd["blocks.1.attn.conv_k_cam.weight"]
    d = write_release(tmp_path / "r", "bidirectional", sd)
    with pytest.raises(CheckpointError, match=r"1 missing \(blocks\.1\.attn\.conv_k_cam\.weight\)"):
        load_official_model(find_release(d))


def test_missing_files_name_what_is_expected(tmp_path):
    with pytest.raises(OfficialError) as e:
        find_release(tmp_path)
    msg = str(e.value)
    for part in ("sana_dit/model.pt", "dit/*.safetensors", "Efficient-Large-Model/SANA-WM_streaming",
                 "Efficient-Large-Model/SANA-WM_bidirectional", "ltx2_causal_vae/", "vae/"):
        assert part in msg
    (tmp_path / "dit").mkdir()
    save_file({"x": torch.zeros(1)}, str(tmp_path / "dit" / "a.safetensors"))
    with pytest.raises(OfficialError, match=r"missing the VAE \(ltx2_causal_vae/config.json or vae/config.json\)"):
        find_release(tmp_path)


def test_training_dict_without_generator(tmp_path, releases):
    d = tmp_path / "r"
    (d / "sana_dit").mkdir(parents=True)
    torch.save({"model": {}}, d / "sana_dit" / "model.pt")
    (d / "vae").symlink_to(releases["bidirectional"] / "vae")
    with pytest.raises(OfficialError, match="weights under 'generator'"):
        load_official_model(find_release(d))


# ------------------------------------------------------------------------------------------------------------ VAE
def test_vae_normalisation_and_first_frame(releases):
    vae = load_official_vae(find_release(releases["streaming"]).vae)
    assert (vae.latent_channels, vae.spatial_factor, vae.temporal_stride) == (LATENT, 32, 8) and vae.causal
    img = torch.rand(1, 3, 64, 96) * 2 - 1
    with torch.no_grad():
        z = vae.encode_image(img)
        raw = vae.ae.encode(img[:, :, None]).latent_dist.mode()
    assert z.shape == (1, LATENT, 1, 2, 3)
    m, s = vae.ae.latents_mean.view(1, -1, 1, 1, 1), vae.ae.latents_std.view(1, -1, 1, 1, 1)
    torch.testing.assert_close(z, (raw - m) * 0.9 / s)
    torch.testing.assert_close(vae.denormalise(z), raw)


@pytest.mark.parametrize("sizes", [(1, 3, 3, 3), (1, 3, 1, 2)])
def test_causal_decoder_streams_exactly(releases, sizes):
    vae = load_official_vae(find_release(releases["streaming"]).vae)
    z = torch.randn(1, LATENT, sum(sizes), 2, 3, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        whole = vae.decode_video(z)
        cache, parts, i = vae.new_decode_cache(), [], 0
        for n in sizes:
            parts.append(vae.decode_chunk(z[:, :, i:i + n], cache))
            i += n
    assert [p.shape[2] for p in parts] == [1 + 8 * (sizes[0] - 1)] + [8 * n for n in sizes[1:]]
    streamed = torch.cat(parts, 2)
    assert streamed.shape == whole.shape == (1, 3, 1 + 8 * (sum(sizes) - 1), 64, 96)
    torch.testing.assert_close(streamed, whole, atol=1e-5, rtol=1e-4)
    # and the decoder is left unpatched afterwards
    assert "forward" not in vars(vae.ae.decoder.conv_in)


def test_non_causal_decoder_streams_with_context(tmp_path):
    small_vae(causal=False).save_pretrained(str(tmp_path / "vae"))
    vae = load_official_vae(tmp_path / "vae")
    assert not vae.causal
    z = torch.randn(1, LATENT, 7, 2, 3, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        cache = vae.new_decode_cache()
        parts = [vae.decode_chunk(z[:, :, :1], cache), vae.decode_chunk(z[:, :, 1:4], cache),
                 vae.decode_chunk(z[:, :, 4:], cache)]
    assert [p.shape[2] for p in parts] == [1, 24, 24]
    assert all(torch.isfinite(p).all() for p in parts)


def test_corrupt_vae_weights(tmp_path, releases):
    d = tmp_path / "vae"
    d.mkdir()
    (d / "config.json").write_text((releases["streaming"] / "ltx2_causal_vae" / "config.json").read_text())
    (d / "diffusion_pytorch_model.safetensors").write_bytes(b"garbage")
    with pytest.raises(OfficialError, match="not a loadable LTX-2 VAE folder"):
        load_official_vae(d)


# ------------------------------------------------------------------------------------------------------------ engine
@pytest.mark.slow
def test_session_walk_in_process(releases):
    from worldwalk.world.session import Session

    model, vae, desc = load_official(releases["bidirectional"])
    assert desc["layout"] == "bidirectional" and desc["preset"] == "small-official"
    s = Session(model, vae)
    img = (np.random.default_rng(0).random((64, 96, 3)) * 255).astype(np.uint8)
    first = s.start(img)
    assert first.shape == (1, 64, 96, 3)
    poses = np.repeat(np.eye(4)[None], s.frames_per_step, 0)
    poses[:, 2, 3] = np.linspace(0.05, 0.5, s.frames_per_step)
    frames = s.step(poses)
    assert frames.shape == (24, 64, 96, 3) and frames.dtype == np.uint8


def test_release_with_the_world_memory(releases):
    """The release's sampler driven by the world memory (SDEdit-style guess, no retraining) with a depth network of
    ours: the start frame is the image, each chunk starts from the memory's render, the state stays the same size,
    and a snapshot replays exactly."""
    from worldwalk.world.depth import DepthConfig, DepthNet
    from worldwalk.world.memory import MemoryConfig, MemorySettings
    from worldwalk.world.session import Session

    model, vae, _ = load_official(releases["streaming"])
    s = Session(model, vae, memory=MemorySettings(config=MemoryConfig(capacity=12000)),
                depth=DepthNet(DepthConfig(widths=(8, 12))))
    img = (np.random.default_rng(1).random((64, 96, 3)) * 255).astype(np.uint8)
    first = s.start(img)
    assert np.abs(first[0].astype(int) - img).mean() < 1.0  # the memory shows the image itself
    n = s.frames_per_step
    turn = lambda k: np.stack([make_yaw(0.01 * (k * n + i + 1)) for i in range(n)])  # noqa: E731
    s.step(turn(0))
    assert s.last_timing.get("reproject", 0) > 0 and s.last_timing["memory_render"] > 0  # the guess was used
    s.step(turn(1))  # the softmax window is full from here on
    snap, size = s.snapshot(), s.state_nbytes()
    a = s.step(turn(2))
    assert s.state_nbytes() == size
    s.restore(snap)
    assert np.array_equal(a, s.step(turn(2)))


def make_yaw(a: float) -> np.ndarray:
    c2w = np.eye(4)
    c2w[0, 0], c2w[0, 2], c2w[2, 0], c2w[2, 2] = np.cos(a), np.sin(a), -np.sin(a), np.cos(a)
    return c2w


def launch(*args):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, str(ROOT / "launch.py"), *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300, env=env, check=False)


def one_line_error(r) -> str:
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert "Traceback" not in r.stderr
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1, r.stderr
    return errors[0]


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    d = tmp_path_factory.mktemp("scene")
    img = np.zeros((90, 120, 3), np.uint8)
    img[:45] = (90, 140, 220)
    img[45:] = (70, 120, 60)
    Image.fromarray(img).save(d / "start.png")
    (d / "walk.actions").write_text("w-20")  # 21 frames: the start + 20 (one chunk of 24, trimmed)
    return d


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["streaming", "bidirectional"])
def test_render_end_to_end(releases, scene, layout):
    from worldwalk.app.video import read_video

    out = scene / f"{layout}.mp4"
    r = launch("render", "--weights", releases[layout], "--image", scene / "start.png", "--trajectory",
               scene / "walk.actions", "--out", out, "--seed", "1")
    assert r.returncode == 0, r.stderr
    frames, fps = read_video(out)
    assert frames.shape == (21, 64, 96, 3) and fps == 16
    rec = json.loads(out.with_suffix(".json").read_text())["metadata"]["worldwalk_recording"]
    assert rec["preset"] == "small-official"


@pytest.mark.slow
def test_render_errors_are_one_line(releases, scene, tmp_path):
    common = ("--image", scene / "start.png", "--trajectory", scene / "walk.actions", "--out", tmp_path / "o.mp4")
    # missing files
    empty = tmp_path / "empty"
    empty.mkdir()
    msg = one_line_error(launch("render", "--weights", empty, *common))
    assert "sana_dit/model.pt" in msg and "Efficient-Large-Model/SANA-WM_streaming" in msg
    # a checkpoint of the wrong size: the small weights without the config that says they are small
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    for name in ("dit", "vae"):
        (wrong / name).symlink_to(releases["bidirectional"] / name)
    msg = one_line_error(launch("render", "--weights", wrong, *common))
    assert "is not the sana-wm-1600m shape" in msg
    # a corrupt DiT file
    bad = tmp_path / "corrupt"
    (bad / "sana_dit").mkdir(parents=True)
    (bad / "sana_dit" / "model.pt").write_bytes(b"PK\x03\x04 truncated zip")
    (bad / "ltx2_causal_vae").symlink_to(releases["streaming"] / "ltx2_causal_vae")
    (bad / "worldwalk_config.json").write_text(json.dumps(SMALL.to_dict()))
    msg = one_line_error(launch("render", "--weights", bad, *common))
    assert "model.pt: not a readable torch checkpoint" in msg


def test_prompted_world_feeds_fixed_text(releases):
    from worldwalk.world.official import PromptedWorld

    model = load_official_model(find_release(releases["streaming"]))
    text, mask = torch.randn(1, 5, SMALL.caption_channels), torch.tensor([[True, True, True, False, False]])
    wrapped = PromptedWorld(model, text, mask)
    x, t = torch.randn(1, LATENT, 4, 2, 3), torch.full((1, 4), 500.0)
    with torch.no_grad():
        assert torch.equal(wrapped(x, t), model(x, t, text=text, text_mask=mask))
        assert not torch.equal(wrapped(x, t), model(x, t))  # the null conditioning skips cross-attention
    assert wrapped.cfg is model.cfg and "text" not in wrapped.state_dict()


def test_prompt_without_text_encoder_is_one_clear_error(releases):
    with pytest.raises(OfficialError, match=r"prompt: no text encoder in .* \(expected text_encoder/config.json"):
        load_official(releases["streaming"], prompt="a beach")


# ------------------------------------------------------------------------------------------------------------ text
def test_gemma_hidden_states_last_is_after_the_final_norm(releases):
    """What the release reads (`hidden_states[-1]` of Gemma2ForCausalLM) is the base model's last_hidden_state:
    the last decoder layer's output through Gemma's final RMSNorm."""
    tok, enc = load_text_encoder(find_release(releases["text"]), "cpu", torch.float32)
    assert isinstance(enc, Gemma2ForCausalLM)
    ids = tok(["a beach at dusk"], return_tensors="pt")
    seen = {}
    hook = enc.base_model.layers[-1].register_forward_hook(
        lambda m, i, o: seen.update(out=o[0] if isinstance(o, tuple) else o))
    with torch.no_grad():
        out = enc(**ids, output_hidden_states=True)
        base = enc.base_model(**ids)
        normed = enc.base_model.norm(seen["out"])
    hook.remove()
    assert len(out.hidden_states) == enc.config.num_hidden_layers + 1
    torch.testing.assert_close(out.hidden_states[-1], base.last_hidden_state, rtol=0, atol=0)
    torch.testing.assert_close(out.hidden_states[-1], normed)
    assert not torch.allclose(seen["out"], normed)  # the norm is not the identity here


def test_encode_prompt_matches_the_diffusers_pipeline(releases):
    """Oracle: diffusers' SanaWMPipeline.encode_prompt (chi prefix, right padding, select_index) run on a stand-in
    pipeline holding the same tokenizer and encoder."""
    files = find_release(releases["text"])
    text, mask = encode_prompt(files, PROMPT)
    assert text.shape == (1, 300, SMALL.caption_channels) and text.dtype == torch.float32
    assert mask.shape == (1, 300) and mask.dtype == torch.bool
    n = int(mask.sum())
    assert mask[0, :n].all() and not mask[0, n:].any()  # BOS, the prompt's tail, then right padding
    assert n == 1 + 1 + len(PROMPT.split())  # BOS + the chi prompt's last token (':') + the prompt's words

    tok, enc = load_text_encoder(files, "cpu", torch.float32)
    assert tok.padding_side == "left"  # Gemma's default: the right padding comes from the call
    stub = SimpleNamespace(tokenizer=tok, text_encoder=enc, _execution_device=torch.device("cpu"))
    with torch.no_grad():
        cond, cond_mask, _, _ = SanaWMPipeline.encode_prompt(stub, PROMPT, device=torch.device("cpu"),
                                                             chi_prompt=DEFAULT_CHI_PROMPT)
    assert cond.shape == (1, 1, 300, SMALL.caption_channels)
    torch.testing.assert_close(text, cond[:, 0].float())
    assert torch.equal(mask, cond_mask.bool())

    other, other_mask = encode_prompt(files, "snow covered mountain")
    assert not torch.allclose(other[mask & other_mask], text[mask & other_mask])


def test_prompted_release_feeds_the_prompt_to_every_forward(releases):
    from worldwalk.world.official import PromptedWorld

    model, _, desc = load_official(releases["text"], prompt=PROMPT)
    assert isinstance(model, PromptedWorld) and desc["prompt"] == PROMPT and desc["text"] == "gemma-2"
    text, mask = encode_prompt(find_release(releases["text"]), PROMPT)
    torch.testing.assert_close(model.text, text)
    assert torch.equal(model.text_mask, mask)


def test_text_encoder_of_another_width_is_one_clear_error(releases, tmp_path):
    d = write_text_encoder(linked_release(tmp_path / "r", releases["text"], "sana_dit", "ltx2_causal_vae",
                                          "worldwalk_config.json"), hidden=48)
    with pytest.raises(OfficialError, match=r"text_encoder: hidden size 48 does not fit the DiT's caption channels "
                                            r"32") as e:
        load_official(d, prompt=PROMPT)
    assert "\n" not in str(e.value)


# ------------------------------------------------------------------------------------------------------------ fp8
def test_fp8_release_halves_the_linear_bytes_and_stays_close(releases, rms):
    files = find_release(releases["streaming"])
    ref = load_official_model(files)  # float32
    bf16 = load_official_model(files, dtype=torch.bfloat16)
    fp8 = load_official_model(files, fp8=True)  # fp8 storage, float32 compute on the CPU
    # the blocks' Linear weights (the embedders and the final layer stay in the compute dtype: DIT_KEEP)
    assert weight_bytes(bf16.blocks) / weight_bytes(fp8.blocks) > 1.8  # the scales cost a little at this width
    assert weight_bytes(ref.blocks) / weight_bytes(fp8.blocks) > 3.6
    assert not is_quantized(fp8.final_layer.linear) and is_quantized(fp8.t_block[1])
    T, (h, w) = 4, SMALL.latent_hw
    g = torch.Generator().manual_seed(3)
    x, t = torch.randn(1, LATENT, T, h, w, generator=g), torch.rand(1, T, generator=g) * 1000
    cam, pl = random_camera(1, T, h, w, 3), torch.randn(1, SMALL.plucker_channels, T, h, w, generator=g)
    text = torch.randn(1, 7, SMALL.caption_channels, generator=g)
    with torch.no_grad():
        want = ref(x, t, cam, pl, text)
        got = fp8(x, t, cam, pl, text)
        got_bf16 = bf16(x, t, cam, pl, text)
    err, err_bf16 = rms(got, want), rms(got_bf16, want)
    assert err < 5e-2, (err, err_bf16)  # 0.037 (bf16 storage and compute: 0.013) on this random model


@pytest.mark.slow
def test_render_with_fp8_weights(releases, scene):
    from worldwalk.app.video import read_video

    out = scene / "fp8.mp4"
    r = launch("render", "--weights", releases["streaming"], "--fp8", "--image", scene / "start.png",
               "--trajectory", scene / "walk.actions", "--out", out, "--seed", "1")
    assert r.returncode == 0, r.stderr
    frames, _ = read_video(out)
    assert frames.shape == (21, 64, 96, 3)
    assert json.loads(out.with_suffix(".json").read_text())["metadata"]["worldwalk_recording"]["fp8"] is True


# ------------------------------------------------------------------------------------------------------------ CLI text
@pytest.mark.slow
def test_render_with_a_prompt_differs_and_replays(releases, scene):
    from worldwalk.app.video import read_video

    # colour matching off: this random VAE decodes near-flat frames, and a colour map fitted to the start image on
    # them mostly flattens what the prompt changes; the world memory off: on this short walk it sees every pixel and
    # its render of the start image would cover what the prompt changes (the replay keeps the recording's settings)
    common = ("--weights", releases["text"], "--image", scene / "start.png", "--trajectory", scene / "walk.actions",
              "--seed", "1", "--colour-match", "off", "--memory", "off")
    r = launch("render", *common, "--out", scene / "plain.mp4")
    assert r.returncode == 0, r.stderr
    r = launch("render", *common, "--out", scene / "beach.mp4", "--prompt", PROMPT)
    assert r.returncode == 0, r.stderr
    assert "Loading weights" not in r.stderr and "Traceback" not in r.stderr  # transformers kept quiet
    plain, _ = read_video(scene / "plain.mp4")
    beach, _ = read_video(scene / "beach.mp4")
    assert plain.shape == beach.shape == (21, 64, 96, 3)
    assert np.array_equal(plain[0], beach[0])  # the start image
    assert np.abs(plain[1:].astype(int) - beach[1:]).mean() > 1  # the prompt changes the world
    rec = json.loads((scene / "beach.json").read_text())["metadata"]["worldwalk_recording"]
    assert rec["prompt"] == PROMPT and rec["text"] == "gemma-2"
    # a replay encodes the recording's prompt again
    r = launch("render", "--replay", scene / "beach.json", "--weights", releases["text"], "--out", scene / "again.mp4")
    assert r.returncode == 0, r.stderr
    again, _ = read_video(scene / "again.mp4")
    assert np.array_equal(again, beach)


@pytest.mark.slow
def test_prompt_errors_are_one_line(releases, scene, tmp_path):
    common = ("--image", scene / "start.png", "--trajectory", scene / "walk.actions", "--out", tmp_path / "o.mp4",
              "--prompt", PROMPT)
    # a release without text_encoder/ and tokenizer/
    msg = one_line_error(launch("render", "--weights", releases["streaming"], *common))
    assert "no text encoder in" in msg and "text_encoder/config.json" in msg
    # a broken text encoder: its config, but weights that are not safetensors
    d = linked_release(tmp_path / "broken", releases["text"], "sana_dit", "ltx2_causal_vae", "worldwalk_config.json",
                       "tokenizer")
    (d / "text_encoder").mkdir()
    (d / "text_encoder" / "config.json").write_text((releases["text"] / "text_encoder" / "config.json").read_text())
    (d / "text_encoder" / "model.safetensors").write_bytes(b"garbage")
    msg = one_line_error(launch("render", "--weights", d, *common))
    assert "text_encoder: not a loadable Gemma-2 text encoder" in msg
    # no text branch: the random-weights world (the bundles' case is in tests/app/test_render.py)
    msg = one_line_error(launch("render", "--random-weights", "--preset", "test", *common))
    assert msg == ("error: --prompt: the --random-weights world has no text branch; prompts need --weights DIR with "
                   "text_encoder/ and tokenizer/")

"""The benchmark scripts run end to end on untrained weights (small settings) and print what their tables promise;
bad input is one line and an exit code. Their figures are meaningless here; what is checked is that every number
they print is there and finite, and that the options change what is measured."""
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def bench(script: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def numbers(line: str) -> list[float]:
    return [float(x) for x in re.findall(r"-?\d+\.\d+", line)]


def test_world_quality_on_random_weights(tmp_path):
    sheet = tmp_path / "sheet.jpg"
    r = bench("world_quality.py", "--random-weights", "--scenes", "1", "--seconds", "1", "--long", "2",
              "--sheet", str(sheet))
    assert r.returncode == 0, r.stderr
    out = r.stdout
    # (on a CPU whose kernels are held to AVX2 to stand in for a smaller one, the header says so before malloc)
    assert re.search(r"\(\d+ cores; avx2[+-] fma[+-] avx512f[+-] avx512_bf16[+-] amx_bf16[+-](; kernels limited: "
                     r"[^;]+, torch uses \w+)?; malloc (heap|system)", out)
    for name in ("walk_forward", "orbit", "look_around", "strafe", "random"):
        row = next(line for line in out.splitlines() if line.startswith(f"| {name} |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        psnr, base = numbers(cells[1])
        assert 0 < psnr < 100 and 0 < base < 100
        assert all(np.isfinite(numbers(c)).all() and numbers(c) for c in cells[2:5])
        assert re.fullmatch(r"\d+ %", cells[5])
    assert "| out_and_back |" not in out  # the return is not reached in 1 s
    summary = next(line for line in out.splitlines() if line.startswith("turning-and-moving walks"))
    model, base = numbers(summary)[:2]
    assert 0 < model < 100 and 0 < base < 100 and "sharpness" in summary and "foggy frames" in summary
    assert np.isfinite(float(re.search(r"lattice ([-+]\d+\.\d+) dB", summary).group(1)))
    revisit = next(line for line in out.splitlines() if line.startswith("revisit"))
    assert all(np.isfinite(numbers(revisit)))
    long_walk = next(line for line in out.splitlines() if line.startswith("2 s walk"))
    assert "NaN-free True" in long_walk and "sharpness first 10 s" in long_walk
    assert re.search(r"generated range is (inside|outside) it", out)
    # the contact sheet: four trajectories, each generated above exact, frames every 0.5 s of the 1 s walks
    img = np.asarray(Image.open(sheet))
    assert img.shape == (4 * 2 * 256, 3 * 256, 3)
    assert img.std() > 5


def test_world_quality_long_walk_alone_on_another_scene():
    r = bench("world_quality.py", "--random-weights", "--scenes", "0", "--long", "2", "--long-scene", "5",
              "--sheet", "")
    assert r.returncode == 0, r.stderr
    assert "| walk_forward |" not in r.stdout and "turning-and-moving" not in r.stdout
    long_walk = next(line for line in r.stdout.splitlines() if line.startswith("2 s walk (scene 5)"))
    assert "NaN-free True" in long_walk


@pytest.mark.parametrize("args, message", [
    (["--weights", "no/such.safetensors"], "no/such.safetensors: no such file"),
    (["--weights", "README.md"], "README.md: not a readable safetensors file"),
    (["--scenes", "0", "--long", "0"], "--scenes 0 --long 0: expected"),
    (["--long-scene", "1"], "--long-scene 1: expected 3 to 99999"),
    (["--memory-setting", "colour=2"], "--memory-setting 'colour=2': expected KEY=VALUE with KEY one of"),
    (["--memory-setting", "feather=wide"], "'wide' is not a number"),
    (["--memory-setting", "feather=-3"], "--memory-setting: "),
    (["--memory-setting", "config.edges=0.1"], "'config.edges=0.1': expected KEY=VALUE with KEY one of"),
    (["--memory-setting", "config.level_weight=1"], "KEY one of"),
    (["--memory-setting", "config.edge=-1"], "--memory-setting: "),
    (["--memory-setting", "open_sky=maybe"], "'open_sky=maybe': expected on or off for open_sky"),
])
def test_world_quality_bad_input_is_one_line(args, message):
    r = bench("world_quality.py", *args, timeout=60)
    assert r.returncode != 0
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and message in r.stderr
    assert "Traceback" not in r.stderr


def test_memory_settings_take_numbers_and_switches():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from world_quality import with_settings

    from worldwalk.world.memory import MemorySettings

    s = with_settings(MemorySettings(), ["open_sky=off", "feather=3", "config.support=0"])
    assert s.open_sky is False and s.feather == 3 and s.config.support == 0
    assert with_settings(s, ["open_sky=on"]).open_sky is True and with_settings(s, ["open_sky=0"]).open_sky is False


def test_sharpness_leaves_out_frames_whose_exact_frame_is_flat():
    """A plain wall filling the exact view has no detail to lose: its sharpness ratio divides by almost nothing, so the
    sharpness means and the foggy share leave such frames out; PSNR and SSIM keep every frame."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from world_quality import per_frame, window

    rng = np.random.default_rng(0)
    textured = rng.integers(0, 256, (6, 32, 32, 3)).astype(np.uint8)
    exact = textured.copy()
    exact[3] = 128  # the wall
    exact[3, 0, 0] = 129  # (not exactly zero: the ratio would only be larger)
    gen = exact.copy()
    gen[1] = 128  # fog where there was texture
    gen[3] = textured[3]  # grain on the wall: a ratio in the thousands
    m = per_frame(gen, exact)
    assert m["flat"].tolist() == [0, 0, 0, 1, 0, 0] and m["sharp"][3] > 1000
    w = window(m, fps=1, lo=0, hi=6)  # frames 1-5
    assert w["sharp"] == pytest.approx(np.mean(m["sharp"][[1, 2, 4, 5]]))
    assert w["sharp4"] == pytest.approx(np.mean(m["sharp4"][[1, 2, 4, 5]]))
    assert w["foggy"] == pytest.approx(0.25) and w["flat"] == pytest.approx(0.2)
    assert w["psnr"] == pytest.approx(np.mean(m["psnr"][1:]))  # every frame
    only = window(m, fps=1, lo=3, hi=4)  # the wall alone: nothing to score
    assert np.isnan(only["sharp"]) and np.isnan(only["foggy"]) and np.isfinite(only["psnr"])


def test_engine_starts_from_the_apps_picture_or_another():
    r = bench("engine.py", "--preset", "test", "--chunks", "3", "--steps", "1")
    assert r.returncode == 0, r.stderr
    assert "| image world_1.png + its depth map |" in r.stdout.splitlines()[0]  # (as the app starts it)
    r = bench("engine.py", "--preset", "test", "--chunks", "3", "--steps", "1", "--image", "noise")
    assert r.returncode == 0 and "| image noise |" in r.stdout.splitlines()[0], r.stderr
    r = bench("engine.py", "--preset", "test", "--chunks", "3", "--image", "no/such.png", timeout=60)
    assert r.returncode != 0
    assert r.stderr.strip() == "error: image: no/such.png: no such file; expected a PNG/JPEG/WebP image"


@pytest.mark.parametrize("reproject", ["0.5", "off"])
def test_engine_turn_reprojects_when_asked(reproject):
    r = bench("engine.py", "--preset", "test", "--chunks", "4", "--steps", "1", "--walk", "turn",
              "--reproject", reproject)
    assert r.returncode == 0, r.stderr
    phases = {m[1]: float(m[2]) for m in re.finditer(r"^\| (\w+) \| ([\d.]+) \| ([\d.]+) \|$", r.stdout, re.M)}
    assert set(phases) == {"memory_render", "reproject", "denoise", "cache_write", "decode", "memory_blend", "overlay",
                           "memory_add", "total"}
    assert phases["denoise"] > 0 and phases["decode"] > 0
    assert phases["total"] >= phases["denoise"] + phases["decode"]
    # turning in place: every chunk starts from a reprojection when asked, none when off
    assert (phases["reproject"] > 0) == (reproject != "off")
    fps = numbers(next(line for line in r.stdout.splitlines() if line.startswith("generated fps")))
    assert fps[0] > 0 and fps[1] > 0
    assert re.search(r"^peak memory: \d+ MiB$", r.stdout, re.M)
    assert re.search(r"state bytes after chunk 1: [\d,]+, 4: [\d,]+", r.stdout)


def test_engine_bad_input_is_one_line():
    r = bench("engine.py", "--weights", "no/such.safetensors", timeout=60)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert r.stderr.strip() == "error: no/such.safetensors: no such file (expected a .safetensors checkpoint)"
    r = bench("engine.py", "--reproject", "2", timeout=60)
    assert r.returncode == 2 and "--reproject" in r.stderr and "expected a noise level in (0, 1]" in r.stderr
    r = bench("engine.py", "--preset", "test", "--memory-setting", "guess_still=maybe", timeout=60)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert r.stderr.strip() == "error: --memory-setting 'guess_still=maybe': expected on or off for guess_still"


def test_engine_times_the_memory_parts():
    """--parts: each part of the world memory timed where the session calls it; a phase's parts (medians, so
    loosely) add up to no more than the phase."""
    r = bench("engine.py", "--preset", "test", "--chunks", "3", "--steps", "1", "--parts")
    assert r.returncode == 0, r.stderr
    phases = {m[1]: float(m[2]) for m in re.finditer(r"^\| (\w+) \| ([\d.]+) \| ([\d.]+) \|$", r.stdout, re.M)}
    parts = {m[1]: (m[2], float(m[3])) for m in re.finditer(r"^\| ([^|]+) \((\w+)\) \| ([\d.]+) \|$", r.stdout, re.M)}
    assert len(parts) == 14 and parts["splat (z-buffer and composite)"][1] > 0 and parts["lift"][1] >= 0
    assert parts["start view: solve"][1] <= parts["start view"][1] + 0.1
    for phase in ("memory_render", "memory_blend", "memory_add"):
        inside = [ms for label, (ph, ms) in parts.items() if ph == phase and not label.startswith("start view:")]
        assert phases[phase] > 0 and sum(inside) <= 1.5 * phases[phase] + 1.0, (phase, inside, phases[phase])


def test_engine_takes_a_memory_setting():
    r = bench("engine.py", "--preset", "test", "--chunks", "2", "--steps", "1", "--memory-setting", "guess_still=off")
    assert r.returncode == 0, r.stderr
    assert "| memory on (guess 0.5) | guess_still=off | start view" in r.stdout.splitlines()[0]


def test_lattice_figure_sees_a_pattern_on_the_latent_cells_not_blur():
    """metrics.lattice_db on a rendered frame: a faint pattern repeated on 16-px cells stands out by several dB; a
    blurred copy (fog) scores lower, and the frame shifted by a few pixels the same."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from metrics import lattice_db
    from scipy.ndimage import gaussian_filter

    from worldwalk.controls.intrinsics import from_fov
    from worldwalk.world.procedural.scene import Scene

    c2w = np.eye(4, dtype=np.float32)[None]
    frame = Scene(7).render(c2w, from_fov(256, 256, 70.0), (256, 256))[0].astype(np.float64)
    yy, xx = np.mgrid[0:256, 0:256]
    dots = 20.0 * ((yy % 16 == 8) & (xx % 16 == 8))  # one brighter pixel per latent cell
    base = lattice_db(frame)
    assert lattice_db(frame + dots[..., None]) - base > 1.5
    assert lattice_db(gaussian_filter(frame, (3, 3, 0))) - base < 0
    assert abs(lattice_db(np.roll(frame, 5, axis=1)) - base) < 0.5


def test_turn_steadiness_scores_noise_that_boils_below_noise_that_turns_with_the_world():
    """metrics.turn_steadiness on a rendered turn: the exact frames score high; the same frames with noise drawn
    afresh every frame score lower than with noise fixed to the world's directions (world/grain.py)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from metrics import turn_steadiness

    from worldwalk.controls.intrinsics import from_fov
    from worldwalk.controls.se3 import make_pose, rotation_from_angles
    from worldwalk.world.grain import GrainField
    from worldwalk.world.procedural.scene import Scene

    intr = from_fov(96, 96, 60.0)
    c2w = make_pose(rotation_from_angles(np.linspace(0, 6, 7)), np.zeros((7, 3)))
    exact = Scene(3).render(c2w.astype(np.float32), intr, (96, 96)).astype(np.float64)
    fixed = GrainField(1).sample(c2w, intr, (96, 96))[:, 0].numpy()[..., None]
    boiling = np.random.default_rng(0).standard_normal(fixed.shape)
    u8 = lambda x: np.clip(x, 0, 255).round().astype(np.uint8)  # noqa: E731
    clean = turn_steadiness(u8(exact), c2w, intr)
    with_fixed = turn_steadiness(u8(exact + 12 * fixed), c2w, intr)
    with_boiling = turn_steadiness(u8(exact + 12 * boiling), c2w, intr)
    assert clean > with_fixed > with_boiling + 2, (clean, with_fixed, with_boiling)


def test_magnified_ssim_finds_the_magnification_and_sees_blur_and_blocks():
    """metrics.magnified_ssim (photo_walks.py's figure for a walk straight in): the picture magnified 1.7x about its
    centre scores near 1 at its own scale, which magnified_match finds; the same frame blurred, or with a third of
    its 16-px blocks flattened to their mean (a picture torn into blocks), scores lower."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from metrics import magnified_match, magnified_ssim
    from scipy.ndimage import gaussian_filter
    from skimage import data

    pic = np.asarray(Image.fromarray(data.astronaut()).resize((128, 128), Image.BICUBIC))
    assert magnified_ssim(pic, pic) > 0.99
    m = 1.7
    h = 64 / m
    zoom = np.asarray(Image.fromarray(pic).resize((128, 128), Image.BICUBIC, box=(64 - h, 64 - h, 64 + h, 64 + h)))
    whole = magnified_ssim(zoom, pic)
    assert whole > 0.85
    assert abs(magnified_match(zoom, pic)[1] - m) < 0.1 and magnified_match(pic, pic)[1] == 1.0  # the scale it found
    blurred = gaussian_filter(zoom.astype(np.float64), (2, 2, 0)).round().astype(np.uint8)
    assert magnified_ssim(blurred, pic) < whole - 0.1
    torn = zoom.copy()
    rng = np.random.default_rng(0)
    for by in range(0, 128, 16):
        for bx in range(0, 128, 16):
            if rng.random() < 1 / 3:
                torn[by:by + 16, bx:bx + 16] = torn[by:by + 16, bx:bx + 16].reshape(-1, 3).mean(0)
    assert magnified_ssim(torn, pic) < whole - 0.1


def test_app_walks_on_one_scene(tmp_path):
    """app_walks.py walks the app's first scene through the rig, a quarter as long, on the embedded default: one row
    with every figure finite, the mean line, and a sheet of the walk over its exact frames."""
    sheet = tmp_path / "sheet.jpg"
    r = bench("app_walks.py", "--scenes", "world_1", "--seconds-scale", "0.25", "--sheet", str(sheet))
    assert r.returncode == 0, r.stderr
    row = next(line for line in r.stdout.splitlines() if line.startswith("| world_1 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert len(numbers(cells[2])) == 2  # 3.5 s of walking: two 2-s stretches
    assert all(np.isfinite(numbers(c)).all() and numbers(c) for c in cells[1:])
    assert 10 < numbers(cells[3])[0] < 60 and 0 < numbers(cells[4])[0] <= 1
    assert "mean over 1 scenes" in r.stdout
    img = np.asarray(Image.open(sheet))
    assert img.shape[0] == 2 * 128 and img.shape[1] % 128 == 0 and img.std() > 5
    r = bench("app_walks.py", "--scenes", "world_9", timeout=60)
    assert r.returncode != 0 and r.stderr.strip().count("\n") == 0 and "world_1" in r.stderr


def test_app_walks_scenes_are_the_worlds_it_names():
    """app_walks.py scores the app's scenes against renders of the worlds they were made from: each shipped picture
    (2x the frame) is its world rendered from the start pose."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from app_walks import SCENES
    from worldwalk.controls.intrinsics import from_fov
    from worldwalk.world.procedural.scene import Scene
    from worldwalk.world.session import DEFAULT_FOV

    for name, seed in SCENES.items():
        pic = np.asarray(Image.open(ROOT / "assets" / "scenes" / f"{name}.png").convert("RGB")).astype(int)
        H, W = pic.shape[:2]
        fx, fy, cx, cy = from_fov(256, 256, DEFAULT_FOV)
        s = W / 256  # the frame's rays through the picture's pixel centres
        intr = np.array([fx * s, fy * s, (cx + 0.5) * s - 0.5, (cy + 0.5) * s - 0.5])
        got = Scene(seed).render(np.eye(4)[None], intr, (W, H))[0].astype(int)
        assert np.abs(got - pic).mean() < 1.0, name

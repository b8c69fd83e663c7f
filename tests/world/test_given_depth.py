"""A start picture with its own depth map (world/images.Picture: an RGB-D picture, as the app's start scenes ship): the
map's files and their errors, its crop to the frame, and a session that walks the picture at that depth instead of
the depth network's guess, the same after a snapshot."""
import numpy as np
import pytest
import torch
from PIL import Image

from worldwalk.world.images import DEPTH_SUFFIXES, Picture, depth_beside, fit_depth, open_picture, read_depth_map


def test_depth_maps_are_read_as_metres_with_none_where_they_hold_none(tmp_path):
    mm = np.zeros((20, 30), np.uint16)
    mm[:10] = 2500  # 2.5 m
    mm[10:, 5] = 65535
    Image.fromarray(mm).save(tmp_path / "a.depth.png")
    z = read_depth_map(tmp_path / "a.depth.png")
    assert z.dtype == np.float32 and z.shape == (20, 30)
    assert np.allclose(z[:10], 2.5) and np.isinf(z[10:, 0]).all() and np.isclose(z[15, 5], 65.535)
    m = np.full((20, 30), 4.0, np.float32)
    m[0, 0], m[0, 1], m[0, 2] = np.nan, -1.0, np.inf
    np.save(tmp_path / "b.depth.npy", m)
    z = read_depth_map(tmp_path / "b.depth.npy")
    assert np.isinf(z[0, :3]).all() and np.allclose(z[1:], 4.0)
    # bad maps: one line naming the file and what is expected
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "c.png")
    np.save(tmp_path / "d.npy", np.zeros((2, 20, 30), np.float32))
    np.save(tmp_path / "e.npy", np.zeros((20, 30), np.float32))  # nothing anywhere
    (tmp_path / "f.png").write_bytes(b"not a png")
    for name, msg in (("c.png", "a RGB image"), ("d.npy", r"shape \(2, 20, 30\)"), ("e.npy", "holds no depth"),
                      ("f.png", "not readable"), ("missing.png", "no such file")):
        with pytest.raises(ValueError, match=msg) as e:
            read_depth_map(tmp_path / name)
        assert str(e.value).startswith(f"depth: {tmp_path / name}") and "expected" in str(e.value)
        assert "\n" not in str(e.value)


def test_a_picture_finds_its_depth_map_beside_it(tmp_path):
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "photo.png")
    assert depth_beside(tmp_path / "photo.png") is None and open_picture(str(tmp_path / "photo.png")) == \
        str(tmp_path / "photo.png")
    Image.fromarray(np.full((20, 30), 1500, np.uint16)).save(tmp_path / "photo.depth.png")
    assert depth_beside(tmp_path / "photo.png") == tmp_path / "photo.depth.png"
    p = open_picture(str(tmp_path / "photo.png"))
    assert isinstance(p, Picture) and np.allclose(p.depth, 1.5) and p.label == str(tmp_path / "photo.png")
    assert "photo.depth.png".endswith(DEPTH_SUFFIXES)
    assert open_picture(np.zeros((4, 4, 3), np.uint8)).shape == (4, 4, 3)  # not a file: as it is


def test_the_map_is_cropped_as_the_picture_is():
    """A 2:1 picture fit to a square frame keeps its middle half; a map of half its resolution does the same."""
    cols = np.tile(np.arange(40, dtype=np.float32), (20, 1))  # each map pixel holds its own column
    out = fit_depth(cols, (80, 40), (16, 16))
    assert out.shape == (16, 16) and out[0, 0] == 10 and out[0, -1] == 29  # the middle half of the columns
    assert np.all(np.diff(out[0]) >= 0)
    with pytest.raises(ValueError, match="expected a map of the picture's shape"):
        fit_depth(cols, (40, 40), (16, 16))


@pytest.fixture(scope="module")
def shipped():
    from worldwalk.world.bundle import DEFAULT_BUNDLE, load_bundle, load_depth
    from worldwalk.world.memory import MemorySettings
    from worldwalk.world.sampler import SamplerConfig
    from worldwalk.world.session import Session

    model, vae, extra = load_bundle(DEFAULT_BUNDLE)
    depth = load_depth(DEFAULT_BUNDLE)
    return Session(model, vae, SamplerConfig(**extra["sampler"]), memory=MemorySettings.from_dict(extra["memory"]),
                   depth=depth)


def test_the_app_scene_is_walked_at_its_own_depth(shipped):
    """The first app scene with its shipped depth map: the memory holds that depth (not the network's, which puts the
    near box at about twice its distance), the start frame is the picture, and a snapshot keeps the depth."""
    from worldwalk import assets_dir

    s = shipped
    path = assets_dir() / "scenes" / "world_1.png"
    pic = open_picture(str(path))
    assert isinstance(pic, Picture)
    first_net = s.start(str(path), fov_deg=60.0)
    net = s._kept_start_depth().clone()
    assert s.depth_sha256 is None and s.given_depth is None
    first = s.start(pic, fov_deg=60.0)
    z = s._kept_start_depth()
    want = torch.from_numpy(fit_depth(pic.depth, (512, 512), (256, 256)))
    near = torch.isfinite(want) & (want < 20)
    assert torch.allclose(z[near], want[near]) and (z[~torch.isfinite(want)] == s.depth.cfg.max_depth).all()
    assert s.memory.count > 0 and s.depth_sha256 and len(s.depth_sha256) == 64
    box = (slice(180, 230), slice(10, 50))  # the box at the lower left: 2.7 m away
    assert float(want[box].median()) < 3.0 and float(net[box].median()) > 4.0  # (the network's guess: 5 m)
    picture = np.asarray(Image.open(path).convert("RGB").resize((256, 256), Image.LANCZOS)).astype(int)
    assert np.abs(first[0].astype(int) - picture).mean() < 1.5 and np.abs(first_net[0].astype(int) - picture).mean() \
        < 1.5  # the start frame is the picture either way
    sha, snap = s.depth_sha256, s.snapshot()
    s.start(str(path), fov_deg=60.0)  # another walk, at the network's depth
    s.restore(snap)
    assert s.depth_sha256 == sha and torch.equal(s.given_depth, snap.tensors["given_depth"])
    assert torch.allclose(s._kept_start_depth()[near], want[near])

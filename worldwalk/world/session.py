"""world.Session: one image in, then a chunk of frames out for each chunk of camera poses, in constant memory.

    s = Session(model, vae)
    first = s.start(image)                 # (1, H, W, 3) uint8: the start frame (the image, cropped to the model's size)
    frames = s.step(poses)                 # poses (N, 4, 4) OpenCV c2w of the next N = chunk_frames·stride raw frames,
                                           # relative to the start camera -> (N, H, W, 3) uint8
    snap = s.snapshot(); snap.save(path)   # everything needed to go on later, rewind, or fork
    s.restore(Snapshot.load(path))

Per chunk: the few-step sampler runs the chunk-causal model reading the cache (the chunk sees earlier chunks only
through it), one clean forward at t = 0 writes the cache, and the VAE decodes the chunk with its own causal cache.
A model with cfg.recycle makes one forward per chunk: the sampler's last forward writes the cache itself and every
forward reads the previous chunk's latents beside its noise (kept in the walk's state as `recycled`).
The first chunk holds the start image's latent (t = 0, kept clean) plus chunk_frames new latents.
With colour_match (default), every decoded frame goes through one affine colour map fitted at start from the decoded
start frame to the image (world/colour.py): it gives back colour the VAE loses.
With the sampler's `reproject` level set, a chunk starts from a guess instead of pure noise where the camera has only
turned (world/sampler.py): the start image and the last frame shown, reprojected into the chunk's poses
(world/reproject.py) and encoded by the VAE. The session keeps both frames (uint8) for it.
With start_overlay (default), the start image itself, reprojected, is laid over the decoded frames where it sees while
the camera is near where it was taken (world/reproject.overlay_start): turning on the spot shows the image exactly
instead of as the VAE and the model render it, fading out over the first 0.25 m of travel. The start frame is then the
image itself (without it: the image as the VAE decodes it).
With a world memory (`memory` settings and a `depth` network, world/memory.py, world/depth.py): at start the image is
lifted into a bounded 3-D point memory with its predicted depth; before each chunk the memory is rendered into every
raw pose. That render is the chunk's starting guess where it sees (encoded by the VAE; each latent starts at the
memory's `guess` level, raised by how little of it the memory sees: pure noise where it sees almost nothing; a
smooth extension of its colours fills the rest), and it is laid over the decoded frames where it sees (feathered),
so what the walk has seen stays put and sharp. After the chunk, the pixels of the last latent's own raw frame (the
memory settings' `lift_last` latents; 0: each latent's) that the memory does not see yet are lifted into it with their
predicted depth: coming back shows the same world. The memory takes the start overlay's place (it holds the start
image, with depth) and is part of the snapshot.
The memory also keeps the picture itself, at its own resolution up to `start_scale` x the frame's (world/start_view.py):
where a later camera magnifies what the start image saw, walking towards it, the frame shows the picture there, found
along each pixel's ray through the start depth and read bicubically (with the picture's own detail when it is larger
than the frame), instead of the memory's magnified points.
Where the frame shows sky that no frame has seen (a turn, a long walk), the memory's `sky` share of the start picture's
own sky colour at the same elevation is laid over what the model drew, as much as the start picture says is sky at
that elevation (world/sky.py): a clean sky instead of haze in bands. Below the horizon, likewise, the memory's `ground`
share of the start picture's own ground colour at the same elevation takes the place of the model's colours there,
block by block, its detail kept (world/ground_colour.py): unseen grass the colour of the picture's instead of a drift
towards greener, brighter fog. What they lay there is remembered like the rest. The chunk's guess takes the same
colours where the memory does not see (`guess_prior`), so that the model does not start a remembered tree's smooth
extension over the open sky beside it. With the memory settings' `skyline`
(off by default), the start picture's standing objects, mirrored round the start camera, are put into the memory at
the start as its points (world/skyline.py): things stand round the whole horizon instead of a haze band.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from worldwalk.controls import rays
from worldwalk.controls.intrinsics import as_vectors, fov_deg as field_of_view, from_fov, to_latent_grid
from worldwalk.controls.se3 import rigidity_problem
from worldwalk.world import skyline
from worldwalk.world.cache import StreamCache
from worldwalk.world.checkpoint import UnreadableFile, read_safetensors
from worldwalk.world.colour import apply_colour_map, fit_colour_map
from worldwalk.world.depth import DepthNet, frames_net
from worldwalk.world.detail import GroundDetail
from worldwalk.world.disocclusion import fill_behind
from worldwalk.world.far_field import open_sky, sky_edges
from worldwalk.world.rims import snap_rims
from worldwalk.world.sheet import smooth_sheet
from worldwalk.world.ground_colour import GroundColour
from worldwalk.world.images import Picture, fit_depth, fit_to_model, fit_to_model_hires, image_hash, load_image
from worldwalk.world.memory import MemorySettings, MemoryView, WorldMemory, pull_push
from worldwalk.world.start_view import StartView, StartViewConfig
from worldwalk.world.model import WorldModel
from worldwalk.world.reproject import feathered, overlay_start, reproject_chunk, start_levels
from worldwalk.world.sampler import SamplerConfig, sample_chunk
from worldwalk.world.seam import seam_offset
from worldwalk.world.sky import SkyProfile
from worldwalk.world.vae import VideoVAE

FOV_RANGE = (25.0, 120.0)  # horizontal field of view the release accepts, degrees
DEFAULT_FOV = 60.0


@dataclass
class Snapshot:
    """The whole state of a walk: tensors + JSON-able metadata. One safetensors file on disk."""

    tensors: dict[str, torch.Tensor]
    meta: dict = field(default_factory=dict)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        save_file({k: v.contiguous() for k, v in self.tensors.items()}, str(tmp),
                  metadata={"worldwalk_snapshot": json.dumps(self.meta)})
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Snapshot":
        path = Path(path)
        try:
            tensors, md = read_safetensors(path)
        except UnreadableFile as e:
            raise ValueError(f"snapshot: {path}: not a readable snapshot file ({e})") from None
        meta = md.get("worldwalk_snapshot")
        if meta is None:
            raise ValueError(f"snapshot: {path}: has no worldwalk snapshot metadata; expected a file from "
                             "Session.snapshot().save()")
        return cls(tensors, json.loads(meta))

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tensors.values())


def depth_hash(z: torch.Tensor | None) -> str | None:
    """sha256 of a picture's own depth on the frame's crop (float32 bytes), None without one."""
    return None if z is None else hashlib.sha256(z.detach().float().cpu().contiguous().numpy().tobytes()).hexdigest()


def _model_id(model: WorldModel, vae: VideoVAE) -> str:
    cfg = dict(model.cfg.to_dict())
    cfg.pop("name")
    if not cfg["recycle"]:  # as before the field existed: walks saved then still restore
        cfg.pop("recycle")
    vcfg = getattr(vae, "cfg", None)
    return json.dumps({"model": cfg, "vae": vcfg.to_dict() if vcfg is not None else type(vae).__name__},
                      sort_keys=True)


class Session:
    def __init__(self, model: WorldModel, vae: VideoVAE, sampler: SamplerConfig | None = None,
                 window_chunks: int | None = 1, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                 colour_match: bool = True, start_overlay: bool = True, memory: MemorySettings | None = None,
                 depth: DepthNet | None = None):
        cfg = model.cfg
        if (vae.latent_channels, vae.spatial_factor, vae.temporal_stride) != \
                (cfg.latent_channels, cfg.spatial_factor, cfg.temporal_stride):
            raise ValueError(f"vae: {vae.latent_channels} channels, spatial x{vae.spatial_factor}, temporal "
                             f"x{vae.temporal_stride} does not fit model {cfg.name!r} ({cfg.latent_channels}, "
                             f"x{cfg.spatial_factor}, x{cfg.temporal_stride})")
        self.model, self.vae, self.cfg = model.eval(), vae.eval(), cfg
        self.sampler = (sampler or SamplerConfig()).validate()
        self.window_chunks = window_chunks
        self.colour_match = bool(colour_match)
        self.colour_map: torch.Tensor | None = None  # (4, 3), fitted at start when colour_match
        self.start_overlay = bool(start_overlay)
        if memory is not None and depth is None:
            raise ValueError("memory: the world memory needs a depth network (a bundle with one, or --memory off)")
        self.memory_settings = memory.validate() if memory is not None else None
        # channels-last convolutions: the depth network a third faster on the CPU (oneDNN), the same depth to 1e-5
        self.depth = depth.eval().to(memory_format=torch.channels_last) if memory is not None else None
        # the generated frames' depth: in bfloat16 where the CPU computes it natively (world/depth.frames_net)
        self._frames_depth = frames_net(self.depth) if self.depth is not None else None
        self.memory: WorldMemory | None = None
        self.start_view: StartView | None = None  # the start image at its own resolution, for magnified views
        self.picture_depth: torch.Tensor | None = None  # (H, W) the start picture's depth as predicted (no sheet)
        self.given_depth: torch.Tensor | None = None  # (H, W) the picture's own depth (world/images.Picture)
        self.depth_sha256: str | None = None  # ... its hash (recordings check it), None without one
        self.ground_detail: GroundDetail | None = None  # the start picture's ground texture (world/detail.py)
        self.sky_profile: SkyProfile | None = None  # the start picture's sky by elevation (world/sky.py)
        self.ground_colour: GroundColour | None = None  # its ground colour by elevation (world/ground_colour.py)
        self.device, self.dtype = torch.device(device), dtype
        self.size_wh = (cfg.resolution[1], cfg.resolution[0])
        self.last_timing: dict[str, float] = {}
        self.last_coverage: float | None = None  # share of the last chunk's pixels the memory saw (None: no memory)
        self._started = False

    # ------------------------------------------------------------------ properties
    @property
    def stride(self) -> int:
        return self.cfg.temporal_stride

    @property
    def frames_per_step(self) -> int:
        """Raw frames each step() takes poses for and returns."""
        return self.cfg.chunk_frames * self.stride

    @property
    def frame_index(self) -> int:
        """Raw frames shown so far, the start frame included."""
        return self._raw_frames

    @property
    def chunk_index(self) -> int:
        return self.cache.chunks

    @property
    def started(self) -> bool:
        return self._started

    def _require_started(self):
        if not self._started:
            raise RuntimeError("session: call start(image) first")

    # ------------------------------------------------------------------ start
    def start(self, image, intrinsics=None, seed: int = 0, prompt: str | None = None,
              fov_deg: float | None = None, frame_intrinsics=None) -> np.ndarray:
        """Begin a walk at `image`. The camera, one of: intrinsics (4,) [fx, fy, cx, cy] or (3, 3) K of the image as
        given (pixels); frame_intrinsics, the same for the model's cropped frame; fov_deg, the horizontal field of
        view of the cropped frame; default 60°. -> (1, H, W, 3) uint8 start frame."""
        img, label = load_image(image)
        if prompt is not None and not self.cfg.caption_channels:
            raise ValueError(f"prompt: model {self.cfg.name!r} has no text branch; leave the prompt out")
        if prompt is not None:
            raise ValueError("prompt: text conditioning needs a text encoder, which this session was not given")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ValueError(f"seed: expected an integer, got {seed!r}")
        W, H = self.size_wh
        if sum(x is not None for x in (intrinsics, fov_deg, frame_intrinsics)) > 1:
            raise ValueError("intrinsics, frame_intrinsics, fov_deg: give at most one of them")
        given = intrinsics if intrinsics is not None else frame_intrinsics
        if given is not None:
            try:
                intr = as_vectors(given, 1)[0]
            except ValueError as e:
                raise ValueError(f"intrinsics: {e}") from None
            if not np.isfinite(intr).all() or (intr[:2] <= 0).any():
                raise ValueError(f"intrinsics: {intr.tolist()}; expected finite values with positive focal lengths")
            if intrinsics is not None:
                pixels, intr = fit_to_model(img, (W, H), intr)
            else:
                pixels, _ = fit_to_model(img, (W, H))
        else:
            pixels, _ = fit_to_model(img, (W, H))
            fov = DEFAULT_FOV if fov_deg is None else float(fov_deg)
            if not 0 < fov < 180:
                raise ValueError(f"fov_deg: {fov}; expected {FOV_RANGE[0]:.0f}–{FOV_RANGE[1]:.0f} degrees")
            intr = from_fov(W, H, fov)
        hfov, _ = field_of_view(intr, W, H)
        if not FOV_RANGE[0] <= hfov <= FOV_RANGE[1]:
            raise ValueError(f"intrinsics: horizontal field of view {hfov:.1f}° after cropping to {W}x{H}; expected "
                             f"{FOV_RANGE[0]:.0f}°–{FOV_RANGE[1]:.0f}°")

        given = None  # the picture's own depth (an RGB-D picture: world/images.Picture), on the frame's crop, as
        # the depth network gives one (converted once: the memory, the start view and _kept_start_depth read it)
        if isinstance(image, Picture):
            given = self._given_depth(torch.from_numpy(fit_depth(np.asarray(image.depth, dtype=np.float32), img.size,
                                                                 (W, H), label)))
        x = torch.from_numpy(pixels).to(self.device).permute(2, 0, 1)[None].float() / 127.5 - 1
        t0 = time.perf_counter()
        with torch.inference_mode():
            z0 = self.vae.encode_image(x.to(self._vae_dtype())).float()  # (1, C, 1, h, w)
            dec_cache = self.vae.new_decode_cache()
            first = self.vae.decode_chunk(z0.to(self._vae_dtype()), dec_cache, cameras=(np.eye(4)[None], intr))
            colour_map = fit_colour_map(first[0, :, 0], x[0]) if self.colour_match else None
            memory, start_view, picture_depth = None, None, None
            if self.memory_settings is not None:
                memory = WorldMemory(self.memory_settings.config, self.device)
                picture_depth = self._start_depth(x, intr) if given is None else given
                # one sheet where it follows the picture's texture (world/sheet.py); a depth given is as it is
                z = self._sheet(picture_depth) if given is None else picture_depth
                px = torch.from_numpy(np.ascontiguousarray(pixels))
                memory.add(px, z, np.eye(4), intr, pinned=True)
                if self.memory_settings.rims:  # its outlines too, each pixel with the side it belongs to (rims.py)
                    cfg = self.memory_settings.config
                    rim, zr = snap_rims(z, x[0], cfg.far, cfg.edge, cfg.edge_inv)
                    if bool(rim.any()):
                        memory.add(px, zr, np.eye(4), intr, mask=rim, pinned=True, rims=True)
                if self.memory_settings.skyline and self.depth is not None:  # its standing objects round the circle
                    self._seed_skyline(memory, pixels, z, x, intr, seed)
                if self.memory_settings.start_scale >= 1:  # the picture, at its own resolution up to start_scale x
                    hires = fit_to_model_hires(img, (W, H), self.memory_settings.start_scale)
                    start_view = StartView(torch.from_numpy(np.ascontiguousarray(pixels)),
                                           torch.from_numpy(np.ascontiguousarray(hires)), z.cpu(), intr,
                                           self._start_view_config())
        # commit (nothing above changed the session)
        self.colour_map = colour_map
        self.memory = memory
        self.start_view = start_view
        self.picture_depth = picture_depth  # the picture's depth as predicted (its ground and sky are read from it)
        self.given_depth = given  # (H, W) metres: the picture's own depth, used instead of the network's; or None
        self.ground_detail = None  # made from the start picture when a frame first needs it
        self.sky_profile = None  # likewise
        self.ground_colour = None  # likewise
        self.z0 = z0
        self.decode_cache = dec_cache
        self.intrinsics = intr  # frame pixels
        self.latent_intrinsics = to_latent_grid(intr, (W, H), self.cfg.spatial_factor)
        self.cache = StreamCache(self.cfg, self.window_chunks)
        self.recycled = None  # one forward per chunk (cfg.recycle): the last chunk's latents (1, C, chunk, h, w)
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.seed = seed
        self.last_pose = np.eye(4)  # c2w of the last raw frame shown (the start camera)
        self.start_pixels = torch.from_numpy(np.ascontiguousarray(pixels))  # (H, W, 3) uint8, the cropped image
        self.shown_frame = self.start_pixels  # (H, W, 3) uint8, the last frame shown (reprojection starts from it;
        # without the ground detail, which only the display gets)
        self._raw_frames = 1
        self.image_label, self.image_sha256 = label, image_hash(img)
        self.depth_sha256 = depth_hash(given)
        self._started = True
        self.last_timing = {"encode_decode": time.perf_counter() - t0}
        first = self._colour(first)
        if memory is not None:
            with torch.inference_mode():  # (the blend works in place on the decoded frame)
                first, detail = self._blend(first, memory.render(np.eye(4)[None], intr, (W, H)), np.eye(4)[None])
            first = self._to_uint8(first)  # (contiguous: the detail draws into it)
            if detail is not None:
                self._ground_detail().add_to(first, np.eye(4)[None], intr, detail)
            return first
        return self._to_uint8(self._overlay(first, np.eye(4)[None]) if self.start_overlay else first)

    def _colour(self, frames: torch.Tensor) -> torch.Tensor:
        return frames if self.colour_map is None else apply_colour_map(frames, self.colour_map)

    def _unit(self, u8: torch.Tensor) -> torch.Tensor:
        """(..., H, W, 3) uint8 frames -> (..., 3, H, W) float in [-1, 1] on the session's device"""
        return u8.to(self.device).movedim(-1, -3).float() / 127.5 - 1

    def _overlay(self, frames: torch.Tensor, poses: np.ndarray) -> torch.Tensor:
        """frames (1, 3, N, H, W) in [-1, 1] for raw poses (N, 4, 4) -> the same with the start image laid over them
        near where it was taken."""
        start = self._unit(self.start_pixels)
        over = overlay_start(frames[0].float().transpose(0, 1), start, poses, self.intrinsics)  # (N, 3, H, W)
        return over.transpose(0, 1)[None]

    def _blend(self, frames: torch.Tensor, view: MemoryView, poses: np.ndarray
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """frames (1, 3, N, H, W) in [-1, 1] at poses (N, 4, 4) -> (the same with the memory's render laid over them
        where it sees (and over the holes a move opens behind an object, what lies behind it: world/disocclusion.py),
        and where that render magnifies the start image the start image itself (world/start_view.py);
        the weight (N, H, W) of the ground detail to add for display (world/detail.py), or None). The detail goes
        wherever the frame does not show the start picture: over what the model drew, new and remembered. The memory
        keeps the frames without it, so it is drawn afresh, the same for the same place, every time (never piling
        up). Float32 frames are changed in place (the caller's decoded chunk; nothing else holds it)."""
        ms = self.memory_settings
        seen, shown = view.coverage, view.rgb
        if ms.behind > 0:  # the holes a move opens behind an object show what lies behind it
            shown, filled = fill_behind(view.rgb, view.depth, view.coverage, ms.behind)
            seen = seen | filled
        w = feathered(seen[:, None].float(), ms.feather)  # (N, 1, H, W)
        if ms.strength != 1:
            w.mul_(ms.strength)
        drawn = frames[0].float().transpose(0, 1)  # (N, 3, H, W)
        if ms.seam > 0:  # the memory's colours carried into what the frame shows beside it (world/seam.py)
            offset = seam_offset(drawn, view.rgb.to(drawn.device), view.coverage.to(drawn.device))
            if offset is not None:
                drawn = drawn + ms.seam * offset
        out = drawn.lerp_(shown.to(drawn.device), w.to(drawn.device))  # (in place: no new 12-frame buffers)
        ws = wss = None  # the start view's weight, and times the strength
        if self.start_view is not None:
            rgb, ws = self.start_view.warp(poses, self.intrinsics, self.size_wh, view.depth, view.coverage)
            wss = ws if ms.strength == 1 else ws * ms.strength
            out.lerp_(rgb.to(out.device), wss.to(out.device))
        if (ms.sky > 0 or ms.ground > 0) and self.start_pixels is not None:
            free = 1 - w[:, 0].cpu()  # (N, H, W): where neither the memory nor the start view draws
            if wss is not None:
                free.mul_(1 - wss[:, 0].cpu())
            out = self._start_colours(out, poses, free)
        detail = None  # how much of the ground detail to draw where (N, H, W)
        if ms.detail > 0 and self.start_pixels is not None:
            where = ~view.pinned if view.pinned is not None else ~view.coverage
            detail = where.float() * ms.detail if ws is None else where * (ms.detail - ms.detail * ws[:, 0])
            if ws is not None:  # and where the start view shows the picture's ground magnified beyond its resolution
                mag = self._ground_detail().magnified(poses, self.intrinsics, self.size_wh, view.depth,
                                                      self.start_view.scale)
                if mag is not None:
                    detail = torch.maximum(detail.cpu().float(), mag.mul_(ms.detail))
        return out.transpose(0, 1)[None], detail

    def _start_depth(self, x: torch.Tensor, intrinsics) -> torch.Tensor:
        """The start picture's depth: x (1, 3, H, W) in [-1, 1] -> (H, W) metres, from the bundle's start picture
        network where it has one (world/depth.py), through the memory settings' own median
        (MemorySettings.start_median), its enclosed far regions filled (MemorySettings.open_sky), its far field's edge
        moved to the picture's own (MemorySettings.sky_edge). What the memory holds is this through `_sheet`."""
        k = self.memory_settings.start_median
        z = self.depth.predict_start(x, intrinsics, median=k or None)[0]
        if self.memory_settings.open_sky:  # its sky only where it can be sky (world/far_field.py)
            z = open_sky(z, self.depth.cfg.max_depth / 2)
        if self.memory_settings.sky_edge > 0:  # its sky's edge where the picture's colours put it (far_field.py)
            z = sky_edges(z, x[0], self.depth.cfg.max_depth / 2, self.memory_settings.sky_edge)
        return z

    def _sheet(self, z: torch.Tensor) -> torch.Tensor:
        """The start depth z (H, W) smoothed into one sheet where its edges are the picture's texture's, not its
        surfaces' (world/sheet.py, MemorySettings.sheet: a photograph); as it is otherwise."""
        ms = self.memory_settings
        if ms.sheet <= 0:
            return z
        return smooth_sheet(z, self.depth.cfg.max_depth / 2, ms.config.edge, ms.config.edge_inv, ms.sheet)[0]

    def _start_view_config(self) -> StartViewConfig:
        """The start view's settings: its depth edges are the memory's (what the lift leaves out, it does not
        follow either); the rays it leaves at their first read, and the pixels whose rays it follows, as the memory
        settings say (start_miss, start_grid)."""
        ms = self.memory_settings
        return StartViewConfig(edge=ms.config.edge, edge_inv=ms.config.edge_inv, miss=ms.start_miss,
                               grid=ms.start_grid)

    def _ground_detail(self) -> GroundDetail:
        """The start picture's ground texture over the world's ground (world/detail.py): made from the start picture
        and its depth when first needed (a restored snapshot makes the same again)."""
        if self.ground_detail is None:
            z = self._kept_start_depth(sheet=False)  # its ground and sky: the picture's depth as predicted
            self.ground_detail = GroundDetail(self.start_pixels, z, self.intrinsics, self.depth.cfg.eye_height)
        return self.ground_detail

    def _ground_colour(self) -> GroundColour:
        """The start picture's ground colour by elevation (world/ground_colour.py): made from the start picture and
        its depth when first needed (a restored snapshot makes the same again)."""
        if self.ground_colour is None:
            z = self._kept_start_depth(sheet=False)  # its ground and sky: the picture's depth as predicted
            self.ground_colour = GroundColour(self.start_pixels, z, self.intrinsics, self.depth.cfg.eye_height)
        return self.ground_colour

    def _sky_profile(self) -> SkyProfile:
        """The start picture's sky by elevation (world/sky.py): made from the start picture and its depth when first
        needed (a restored snapshot makes the same again)."""
        if self.sky_profile is None:
            z = self._kept_start_depth(sheet=False)  # its ground and sky: the picture's depth as predicted
            self.sky_profile = SkyProfile(self.start_pixels, z, self.intrinsics, self.depth.cfg.max_depth)
        return self.sky_profile

    def _seed_skyline(self, memory: WorldMemory, pixels: np.ndarray, z: torch.Tensor, x: torch.Tensor, intr,
                      seed: int) -> None:
        """The start picture's standing objects, mirrored round the start camera, into the new memory (world/
        skyline.py): pixels (H, W, 3) uint8, z (H, W) its start depth, x (1, 3, H, W) the same picture in [-1, 1];
        seed: the session's (where each copy's objects stand)."""
        cfg = self.depth.cfg
        mask = skyline.standing_objects(z, intr, cfg.eye_height, cfg.max_depth, self.depth.start_objects(x, intr))
        if mask is not None:
            skyline.seed(memory, torch.from_numpy(np.ascontiguousarray(pixels)), z.cpu(), intr, mask,
                         self.memory_settings.generated_conf, rng_seed=seed)

    def _given_depth(self, z: torch.Tensor) -> torch.Tensor:
        """A picture's own depth (H, W) metres (inf: none) -> as the depth network gives it: the far field and what
        holds no depth at the network's max_depth, the rest inside its range."""
        lo, hi = (self.depth.cfg.min_depth, self.depth.cfg.max_depth) if self.depth is not None else (0.05, 200.0)
        z = z.to(self.device, torch.float32)
        return torch.where(torch.isfinite(z), z.clamp(lo, hi), torch.full_like(z, hi))

    def _kept_start_depth(self, sheet: bool = True) -> torch.Tensor:
        """(H, W) metres: the start picture's depth as the memory holds it (sheet: smoothed into one sheet where it
        follows the picture's texture, world/sheet.py) or as predicted (not: what its ground and sky are read from),
        kept from the start, or predicted again where it was not kept (a restored snapshot)."""
        if sheet and self.start_view is not None:
            return self.start_view.depth
        if self.given_depth is not None:  # the picture's own (an RGB-D picture), never smoothed
            return self.given_depth
        if self.picture_depth is None:
            with torch.inference_mode():
                self.picture_depth = self._start_depth(self._unit(self.start_pixels)[None], self.intrinsics)
        return self._sheet(self.picture_depth) if sheet else self.picture_depth

    def depth_ahead(self) -> float | None:
        """Metres to what lies straight ahead in the start picture: the nearer quarter (25th percentile) of its
        predicted depth over the central half of the frame, across and down. None without a depth network or a start
        picture. Front ends start the walking speed from it (controls/rig.py Rig.fit_speed): a close-up is walked
        slowly."""
        if self.depth is None or getattr(self, "start_pixels", None) is None:
            return None
        z = self._kept_start_depth()
        H, W = z.shape[-2:]
        ahead = z[H // 4:H - H // 4, W // 4:W - W // 4].float().flatten()
        return float(torch.quantile(ahead, 0.25))

    def _remember(self, frames: np.ndarray, poses: np.ndarray, view: MemoryView) -> None:
        """Lift what the memory does not see yet of a chunk's shown frames at its last `lift_last` latents' own raw
        frames (each latent's when 0; (N, H, W, 3) uint8 at poses (N, 4, 4); the view is the memory's render of them
        before the chunk), with their predicted depth. Each frame after the first is checked against the memory as the
        earlier ones left it."""
        s, ms = self.stride, self.memory_settings
        inner = torch.zeros(self.size_wh[::-1], dtype=torch.bool, device=view.coverage.device)
        m = ms.generated_margin
        inner[m:inner.shape[0] - m, m:inner.shape[1] - m] = True
        latents = list(range(s - 1, len(frames), s))
        if ms.lift_last > 0:  # the chunk's last latent frames only (MemorySettings.lift_last)
            latents = latents[-ms.lift_last:]
        # depth for every frame with something new before the chunk, in one batch (a frame that earlier frames' points
        # then cover whole is not lifted)
        todo = [i for i in latents if float((~(view.coverage[i] | ~inner)).float().mean()) >= 1e-3]
        if not todo:
            self.memory.tick()
            return
        pixels = torch.from_numpy(frames[todo])
        depth = self._frames_depth.predict(self._unit(pixels), self.intrinsics, poses[todo],
                                           downscale=ms.generated_depth_scale)
        added = []  # slots written by this chunk's earlier frames: only they can change what a later frame sees
        for j, i in enumerate(todo):
            seen, px, extra = view.coverage[i], pixels[j], None
            if added:
                extra = self.memory.render(poses[i][None], self.intrinsics, self.size_wh, stamp=False,
                                           only=torch.cat(added))
                seen = seen | extra.coverage[0]
            if ms.seam > 0:  # what this frame adds takes the colours of what the memory holds beside it (the
                # decoder's drawing, some frames later, seldom agrees with what it drew there before: world/seam.py)
                rgb = view.rgb[i] if extra is None else torch.where(extra.coverage[0], extra.rgb[0], view.rgb[i])
                drawn = self._unit(px)
                offset = seam_offset(drawn[None], rgb[None], seen[None], cell=2)  # (finer: one frame)
                if offset is not None:
                    px = torch.from_numpy(self._to_uint8((drawn + ms.seam * offset[0])[None, :, None])[0])
            seen = seen | ~inner
            if float((~seen).float().mean()) < 1e-3:  # nothing new left in this frame
                continue
            if self.memory.add(px, depth[j], poses[i], self.intrinsics, mask=~seen, conf=ms.generated_conf):
                added.append(self.memory.last_added)
        self.memory.tick()

    def _vae_dtype(self):
        return next(self.vae.parameters()).dtype

    @staticmethod
    def _to_uint8(frames: torch.Tensor) -> np.ndarray:
        """(1, 3, F, H, W) in [-1, 1] -> (F, H, W, 3) uint8, C-contiguous (the uint8 frames, channels last: torch's
        layout change is several times faster than numpy's copy of the permuted view)"""
        f = ((frames[0].float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)  # (3, F, H, W)
        return f.transpose(0, 1).contiguous(memory_format=torch.channels_last).permute(0, 2, 3, 1).cpu().numpy()

    # ------------------------------------------------------------------ step
    def check_poses(self, poses) -> np.ndarray:
        p = np.asarray(poses, dtype=np.float64)
        n = self.frames_per_step
        if p.shape != (n, 4, 4):
            raise ValueError(f"poses: expected ({n}, 4, 4) camera-to-world matrices for one chunk, got {p.shape}")
        if not np.isfinite(p).all():
            raise ValueError("poses: contain NaN or infinity")
        problem = rigidity_problem(p)
        if problem:
            raise ValueError(f"poses: {problem}; expected rigid OpenCV camera-to-world matrices")
        return p

    def _camera(self, poses: np.ndarray, f0: int):
        """camera_conditions (1, T, 20) and Plücker (1, 6s, T, h, w) of the chunk starting at latent frame f0.

        Latent j stands for raw frame j·s and its Plücker window covers raw frames j·s−s+1 … j·s (latent 0: 0 … s−1),
        so a chunk never looks further back than the last raw frame of the previous chunk: prepend that pose (the
        start pose for the first chunk) and the clip lines up with latent frames again.
        """
        s = self.stride
        clip = torch.from_numpy(np.concatenate([self.last_pose[None], poses])).float()[None]  # (1, 1 + N, 4, 4)
        intr = torch.from_numpy(self.latent_intrinsics).float().expand(1, clip.shape[1], 4)
        cc = rays.camera_conditions(clip, intr, s)
        pl = rays.plucker_raymaps(clip, intr, self.cfg.latent_hw, s)
        if f0 > 0:  # the prepended frame belongs to the previous chunk's last latent
            cc, pl = cc[:, 1:], pl[:, :, 1:]
        return cc.to(self.device), pl.to(self.device)

    def step(self, poses) -> np.ndarray:
        """Generate the next chunk for `poses` (N, 4, 4). -> (N, H, W, 3) uint8 frames."""
        self._require_started()
        poses = self.check_poses(poses)
        cfg = self.cfg
        f0 = self.cache.frames
        new = cfg.chunk_frames
        T = new + (1 if f0 == 0 else 0)
        cam, pl = self._camera(poses, f0)
        h, w = cfg.latent_hw
        dt = self.dtype
        timing = {}

        one_pass = cfg.recycle  # one forward per chunk: the last denoising forward writes the cache
        recycled = None if f0 == 0 or not one_pass else self.recycled.to(dt)

        def velocity(x_new: torch.Tensor, sigma, write: bool = False) -> torch.Tensor:
            # sigma: float, or (new,) per-frame levels
            x = x_new if f0 > 0 else torch.cat([self.z0, x_new], 2)
            ts = torch.zeros((1, T), device=self.device)
            ts[:, T - new:] = 1000.0 * sigma
            v = self.model(x.to(dt), ts, cam, pl, mode="chunk_causal", frame_offset=f0, cache=self.cache,
                           write_cache=write, recycled=recycled)
            return v[:, :, T - new:].float()

        final = (lambda x_new, sigma: velocity(x_new, sigma, write=True)) if one_pass else None

        t = time.perf_counter()
        with torch.inference_mode():
            view = None
            if self.memory is not None:
                view = self.memory.render(poses, self.intrinsics, self.size_wh)
                timing["memory_render"] = time.perf_counter() - t
                t = time.perf_counter()
            noise = torch.randn((1, cfg.latent_channels, new, h, w), generator=self.generator, device=self.device)
            guess, seen, levels = self._reprojection(poses, view)
            if guess is not None:
                if seen is not None and not bool(seen.all()):  # what no frame saw: the model's own prediction from
                    # noise, then all from there
                    plain = sample_chunk(velocity, noise, self.sampler, self.generator)
                    guess = torch.where(seen, guess, plain)
                    noise = torch.randn(noise.shape, generator=self.generator, device=self.device)
                timing["reproject"] = time.perf_counter() - t
            t_ = time.perf_counter()
            z = sample_chunk(velocity, noise, self.sampler, self.generator, guess, levels, final=final)
            timing["denoise"] = time.perf_counter() - t_
            if one_pass:
                self.recycled = z  # what the next chunk's forward reads beside its noise
            else:  # the clean forward at t = 0 writes the cache
                t = time.perf_counter()
                full = z if f0 > 0 else torch.cat([self.z0, z], 2)
                self.model(full.to(dt), torch.zeros(1, T, device=self.device), cam, pl, mode="chunk_causal",
                           frame_offset=f0, cache=self.cache, write_cache=True)
                timing["cache_write"] = time.perf_counter() - t
            t = time.perf_counter()
            frames = self._colour(self.vae.decode_chunk(z.to(self._vae_dtype()), self.decode_cache,
                                                        cameras=(poses, self.intrinsics)))  # (grain reads them)
            timing["decode"] = time.perf_counter() - t
            detail = None
            if view is not None:
                t = time.perf_counter()
                frames, detail = self._blend(frames, view, poses)
                timing["memory_blend"] = time.perf_counter() - t
            elif self.start_overlay and self.start_pixels is not None:
                t = time.perf_counter()
                frames = self._overlay(frames, poses)
                timing["overlay"] = time.perf_counter() - t
        out = self._to_uint8(frames)
        if view is not None:
            t = time.perf_counter()
            with torch.inference_mode():
                self._remember(out, poses, view)  # what the model drew, without the detail (drawn afresh each time)
            timing["memory_add"] = time.perf_counter() - t
        self.last_pose = poses[-1]
        self.shown_frame = torch.from_numpy(out[-1].copy())  # (the next chunk's guess starts from it, without detail)
        if detail is not None:  # for display only
            t = time.perf_counter()
            out = self._ground_detail().add_to(out, poses, self.intrinsics, detail)  # (in place: the memory and
            # shown_frame took copies of what they keep)
            timing["memory_blend"] += time.perf_counter() - t
        self._raw_frames += poses.shape[0]
        timing["total"] = sum(timing.values())
        self.last_timing = timing
        self.last_latents = z
        self.last_coverage = None if view is None else float(view.coverage.float().mean())
        return out

    def _reprojection(self, poses: np.ndarray, view: MemoryView | None = None):
        """-> (guess latents (1, C, new, h, w), seen (1, 1, new, h, w) bool: the latent cells the reprojection mostly
        saw, start levels (new,)) for a chunk over poses, or (None, None, None) where the sampler does not reproject or
        the camera moves too far for any latent to start below pure noise. With the memory's view of the poses: the
        guess is its render (seen: None, no extra pass)."""
        sam, s, new = self.sampler, self.stride, self.cfg.chunk_frames
        if view is not None:
            return self._memory_guess(poses, view)
        if sam.reproject is None:
            return None, None, None
        levels = start_levels(self.last_pose, poses[s - 1::s][:new], sam.reproject, sam.reproject_radius)
        if bool((levels >= 1).all()):
            return None, None, None
        last = self._unit(self.shown_frame)
        frames, seen = reproject_chunk(self._unit(self.start_pixels), last, self.last_pose, poses, self.intrinsics,
                                       sam.reproject_radius)  # (N, 3, H, W), (N, H, W)
        dt = self._vae_dtype()  # the latents of the frames after the last shown (N = s·k of them)
        guess = self.vae.encode_next(last[None].to(dt), frames[None].transpose(1, 2).to(dt)).float()
        # a latent cell counts as seen where more than half of its pixels were, in the latent's own (last) raw frame
        cells = F.avg_pool2d(seen[s - 1::s][:new, None].float(), self.cfg.spatial_factor)  # (new, 1, h, w)
        return guess, (cells > 0.5).transpose(0, 1)[None].to(self.device), levels.to(self.device)

    def _memory_guess(self, poses: np.ndarray, view: MemoryView):
        """The memory's render as a chunk's starting guess: each latent starts at the memory settings' `guess` level
        where the memory sees all of its own raw frame, rising linearly to 1 as the seen share falls to
        guess_min_coverage (pure noise below). Pixels the memory does not see hold a smooth extension of those it does
        (pull-push)."""
        ms, s, new = self.memory_settings, self.stride, self.cfg.chunk_frames
        if ms.guess is None:
            return None, None, None
        cov = view.coverage[s - 1::s][:new].float().mean((1, 2))  # (new,) share of each latent's frame seen
        lo = ms.guess_min_coverage
        levels = ms.guess + (1 - ms.guess) * ((1 - cov) / (1 - lo)).clamp(0, 1)
        levels = torch.where(cov < lo, torch.ones_like(levels), levels)
        if bool((levels >= 1).all()):
            return None, None, None
        # the memory's render with what it does not see filled by a smooth extension of its own colours, after the
        # last frame shown; channels-last, as the encoder's convolutions read them (no copy on the way). guess_still:
        # each latent's own raw frame only, held still
        rgb, cov, z = (view.rgb[s - 1::s][:new], view.coverage[s - 1::s][:new], view.depth[s - 1::s][:new]) \
            if ms.guess_still else (view.rgb, view.coverage, view.depth)
        if ms.behind > 0:  # the holes a move opens behind an object take what lies behind it (world/disocclusion.py)
            rgb, filled = fill_behind(rgb, z, cov, ms.behind)
            cov = cov | filled
        (W, H), dt = self.size_wh, self._vae_dtype()
        clip = torch.empty((rgb.shape[0], 3, H, W), device=self.device, memory_format=torch.channels_last)
        pull_push(rgb.to(self.device), cov[:, None].float().to(self.device), out=clip)
        if ms.guess_prior and self.start_pixels is not None and (ms.sky > 0 or ms.ground > 0):
            self._guess_prior(clip, poses[s - 1::s][:new] if ms.guess_still else poses, ~cov)
        guess = self.vae.encode_next(self._unit(self.shown_frame)[None].to(dt), clip[None].transpose(1, 2).to(dt),
                                     still=ms.guess_still).float()
        return guess, None, levels.to(self.device)

    def _start_colours(self, frames: torch.Tensor, poses: np.ndarray, free: torch.Tensor) -> torch.Tensor:
        """frames (N, 3, H, W) float32 at poses, where `free` (N, H, W) on the CPU says how much nothing draws them
        -> the same with the memory settings' `sky` share of the start picture's sky colour at the same elevation, as
        much as it says is sky there (world/sky.py), and its `ground` share of the picture's ground colour at the same
        elevation, at the scale of blocks, as much as it says is open ground there (world/ground_colour.py); float32
        frames on the CPU are changed in place."""
        ms = self.memory_settings
        if ms.sky > 0 and self._sky_profile().usable:
            frames = self._sky_profile().blend(frames.cpu(), poses, self.intrinsics,
                                               free if ms.sky == 1 else free * ms.sky).to(frames.device)
        if ms.ground > 0:
            self._ground_colour().correct(frames, poses, self.intrinsics, free if ms.ground == 1 else free * ms.ground)
        return frames

    def _guess_prior(self, clip: torch.Tensor, poses: np.ndarray, holes: torch.Tensor) -> None:
        """clip (N, 3, H, W) the guess's frames at poses, changed in place: where the memory does not see (holes
        (N, H, W) bool), the start picture's sky and ground colours, as the frame shown takes them (_start_colours),
        over the smooth extension of what the memory sees beside (MemorySettings.guess_prior)."""
        out = self._start_colours(clip.float().cpu().contiguous(), poses, holes.float().cpu())
        clip.copy_(out.to(clip.device, clip.dtype))

    # ------------------------------------------------------------------ state
    def state_nbytes(self) -> int:
        """Bytes of everything the walk carries from chunk to chunk (caches, start latent, last pose, RNG)."""
        self._require_started()
        return self.snapshot().nbytes()

    def snapshot(self) -> Snapshot:
        self._require_started()
        t = {f"cache.{k}": v for k, v in self.cache.state_dict().items()}
        t.update({f"vae.{k}": v for k, v in self.decode_cache.items() if torch.is_tensor(v)})
        t["z0"] = self.z0
        if self.recycled is not None:
            t["recycled"] = self.recycled
        t["rng"] = self.generator.get_state()
        t["last_pose"] = torch.from_numpy(self.last_pose.copy())
        t["intrinsics"] = torch.from_numpy(np.asarray(self.intrinsics, dtype=np.float64))
        if self.start_pixels is not None:  # None only after restoring a snapshot from before reprojection
            t["start_pixels"], t["shown_frame"] = self.start_pixels, self.shown_frame
        if self.colour_map is not None:
            t["colour_map"] = self.colour_map
        if self.given_depth is not None:
            t["given_depth"] = self.given_depth
        if self.memory is not None:
            t.update({f"memory.{k}": v for k, v in self.memory.state_dict().items()})
        if self.start_view is not None:
            t.update({f"start_view.{k}": v for k, v in self.start_view.state_dict().items()})
        meta = {"model": _model_id(self.model, self.vae), "cache": self.cache.meta(), "raw_frames": self._raw_frames,
                "seed": self.seed, "sampler": self.sampler.to_dict(), "image_sha256": self.image_sha256,
                "image": self.image_label,
                "vae_flags": {k: v for k, v in self.decode_cache.items() if not torch.is_tensor(v)}}
        if self.memory is not None:
            meta["memory"] = self.memory_settings.to_dict()
        return Snapshot({k: v.detach().clone() for k, v in t.items()}, meta)

    def restore(self, snap: Snapshot) -> None:
        """Continue from `snap` (of this model and VAE). Raises ValueError and changes nothing if it does not fit."""
        m = snap.meta
        if m.get("model") != _model_id(self.model, self.vae):
            raise ValueError("snapshot: was taken with another model or VAE configuration than this session's")
        try:
            tens = snap.tensors
            cache = StreamCache.from_state(self.cfg, {k[6:]: v.to(self.device) for k, v in tens.items()
                                                      if k.startswith("cache.")}, m["cache"])
            dec = {k[4:]: v.to(self.device) for k, v in tens.items() if k.startswith("vae.")}
            dec.update(m.get("vae_flags", {}))
            gen = torch.Generator(device=self.device)
            gen.set_state(tens["rng"])
            z0, last, intr = tens["z0"].to(self.device), tens["last_pose"].numpy(), tens["intrinsics"].numpy()
            recycled = tens.get("recycled")
            if self.cfg.recycle and cache.chunks > 0:
                want = (1, self.cfg.latent_channels, self.cfg.chunk_frames, *self.cfg.latent_hw)
                if recycled is None or tuple(recycled.shape) != want:
                    raise ValueError(f"recycled latents {None if recycled is None else tuple(recycled.shape)}, "
                                     f"expected {want}")
                recycled = recycled.to(self.device)
            else:
                recycled = None
            raw = int(m["raw_frames"])
            colour_map = tens.get("colour_map")
            if colour_map is not None and tuple(colour_map.shape) != (4, 3):
                raise ValueError(f"colour_map has shape {tuple(colour_map.shape)}, expected (4, 3)")
            frame_shape = (self.size_wh[1], self.size_wh[0], 3)
            start_px, shown_frame = tens.get("start_pixels"), tens.get("shown_frame")
            for name, f in (("start_pixels", start_px), ("shown_frame", shown_frame)):
                if f is None and self.sampler.reproject is not None:
                    raise KeyError(f"{name} (the sampler reprojects; a snapshot from before reprojection has none)")
                if f is not None and (tuple(f.shape) != frame_shape or f.dtype != torch.uint8):
                    raise ValueError(f"{name} is {f.dtype} {tuple(f.shape)}, expected uint8 {frame_shape}")
            given = tens.get("given_depth")
            if given is not None and (tuple(given.shape) != frame_shape[:2] or given.dtype != torch.float32):
                raise ValueError(f"given_depth is {given.dtype} {tuple(given.shape)}, expected float32 "
                                 f"{frame_shape[:2]}")
            memory = None
            if self.memory_settings is not None:
                mem = {k[7:]: v for k, v in tens.items() if k.startswith("memory.")}
                if not mem:
                    raise ValueError("it holds no world memory (taken with the memory off); restore it with the "
                                     "memory off")
                memory = WorldMemory(self.memory_settings.config, self.device)
                memory.load_state_dict(mem)
            start_view = None
            sv = {k[11:]: v for k, v in tens.items() if k.startswith("start_view.")}
            if memory is not None and sv and self.memory_settings.start_scale >= 1:  # (none in snapshots from
                # before the start view: their walks go on without it)
                start_view = StartView.from_state(sv, self._start_view_config())
        except (KeyError, ValueError, RuntimeError, TypeError) as e:
            raise ValueError(f"snapshot: incomplete or damaged ({type(e).__name__}: {e})") from None
        W, H = self.size_wh
        self.cache, self.decode_cache, self.generator = cache, dec, gen
        self.z0, self.last_pose, self.intrinsics = z0, last, intr
        self.recycled = recycled
        self.start_pixels, self.shown_frame = start_px, shown_frame
        self.memory = memory
        self.start_view = start_view
        self.picture_depth = None  # predicted again from the start picture when a frame needs it
        self.given_depth = None if given is None else given.to(self.device)  # (or the picture's own, kept in the
        # snapshot as the session holds it)
        self.depth_sha256 = depth_hash(given)
        self.ground_detail = None  # made again from the start picture when a frame needs it
        self.sky_profile = None  # likewise
        self.ground_colour = None  # likewise
        # a snapshot from before colour matching (or with it off) has no map: its walk goes on without one
        self.colour_map = colour_map.float().to(self.device) if colour_map is not None and self.colour_match else None
        self.latent_intrinsics = to_latent_grid(intr, (W, H), self.cfg.spatial_factor)
        self._raw_frames, self.seed = raw, int(m["seed"])
        self.image_sha256, self.image_label = m.get("image_sha256"), m.get("image", "snapshot")
        self._started = True

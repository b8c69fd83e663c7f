"""The Gradio Blocks of the browser demo: the page people walk in, and the API `gradio_client` calls.

The page: a viewport (an <img> the page's script fills with JPEG frames pulled from the demo's own routes, a HUD, a
path map, key caps), buttons under it (pause, bookmark, rewind, reset, record, downloads) and a start panel (start
scenes, upload, seed, Start). Gradio events start and control the walk; the hot path (frames out, keys and mouse in)
bypasses Gradio's queue through the routes in app/web/server.py. The downloads are links to the demo's own route
(`worldwalk/download/<walk token>/walk-01.mp4`), never a file of Gradio's and never a path.

The API (same engine, same cap on concurrent walks; the README documents it):
    start_walk(image, seed, scene) -> walk_id, first frame (PNG), info {frames_per_step, fps, size, ...}
    step_walk(walk_id, poses)      -> MP4 of the frames, .npy of the exact frames (N, H, W, 3) uint8, info
                                      poses: JSON (N, 4, 4) OpenCV camera-to-world matrices relative to the start
                                      camera, N a multiple of frames_per_step
    end_walk(walk_id)              -> message (frees the walk at once; idle walks are freed after --idle-timeout)
    render(image, trajectory_file, trajectory, seed, fov, scene) -> MP4, sidecar JSON (replayable by `launch.py
                                      render`), info
An image or trajectory file is an upload sent with the call (gradio_client's handle_file); `scene` names a built-in
start scene instead of an image. No event takes a path on the server (GuardedBlocks, files.py). Files come back as
Gradio file objects named `worldwalk-files/<hash>/<name>` (files.HidePaths): gradio_client downloads them as usual.
"""
from __future__ import annotations

import contextlib
import html
import json
import threading
import time
import uuid
from pathlib import Path

import gradio as gr
import numpy as np

from worldwalk.app.recorder import Recorder, recording_info, start_snapshot_path
from worldwalk.app.render import chunked_poses
from worldwalk.app.video import VideoWriter
from worldwalk.app.web.files import REFUSED, Uploads, scrub
from worldwalk.app.web.scenes import Scene
from worldwalk.app.web.walks import Busy, LiveWalk, WalkGone, WalkManager, parse_seed, prepare_image

STATIC = Path(__file__).resolve().parent / "static"

VIEWPORT = """
<div id="ww-view" tabindex="0" data-state="idle" style="--ww-aspect: {aspect}">
  <img id="ww-frame" alt="the world you are walking through" data-seq="0" draggable="false">
  <div id="ww-hud" data-state="idle"></div>
  <canvas id="ww-map" width="300" height="300"></canvas>
  <div id="ww-keys">
    <span data-key="q">Q</span><span data-key="w">W</span><span data-key="e">E</span>
    <span data-key="a">A</span><span data-key="s">S</span><span data-key="d">D</span>
    <span data-key="shift" class="ww-wide">SHIFT · run</span>
  </div>
  <div id="ww-hint">click to look around · Esc releases the mouse</div>
  <div id="ww-overlay"><b>Choose a start scene, then press Start walking</b>
    <small>or upload a picture of your own: the world it opens onto is generated as you walk</small></div>
</div>
"""

HELP = """
<div id="ww-help">

**Walk** <kbd>W</kbd> <kbd>A</kbd> <kbd>S</kbd> <kbd>D</kbd> · **up / down** <kbd>E</kbd> <kbd>Q</kbd> ·
**run** <kbd>Shift</kbd> · **turn and look** <kbd>←</kbd> <kbd>→</kbd> <kbd>↑</kbd> <kbd>↓</kbd>
or click the view for mouse-look (<kbd>Esc</kbd> gives the mouse back).
**Bookmark** a place, walk on, **Rewind** to come back to it. **Record**, stop, then download the video and the
camera path (replay it with `launch.py render --replay`).

</div>
"""

PAUSE, RESUME = "❚❚ Pause", "▶ Resume"
RECORD, STOP_RECORD = "● Record", "■ Stop recording"
VIDEO_DL, PATH_DL, START_DL = "⬇ Video (MP4)", "⬇ Camera path (JSON)", "⬇ Start state (for an exact replay)"


def downloads_html(token: str | None = None, mp4: Path | None = None, side: Path | None = None,
                   start: Path | None = None) -> str:
    """The download links under the view: the demo's own route with the walk's token and the names the demo gave the
    files (relative links, as the page's script uses), or greyed-out labels while there is nothing to download. The
    start state (the walk's snapshot when the recording began; `render --replay` reads it beside the JSON) is linked
    only when there is one."""
    def link(label: str, f: Path | None) -> str:
        if not token or f is None:
            return f'<span class="ww-dl ww-dl-off" aria-disabled="true">{label}</span>'
        href = html.escape(f"worldwalk/download/{token}/{f.name}", quote=True)
        return f'<a class="ww-dl" href="{href}" download="{html.escape(f.name, quote=True)}">{label}</a>'
    extra = link(START_DL, start) if token and start is not None else ""
    return f'<div class="ww-downloads">{link(VIDEO_DL, mp4)}{link(PATH_DL, side)}{extra}</div>'


def _theme():
    sys_fonts = ["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"]
    mono = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]
    return gr.themes.Soft(primary_hue="sky", neutral_hue="slate", font=sys_fonts, font_mono=mono)


def assets() -> dict:
    """css, js and theme for launch()/mount_gradio_app() (Gradio 6 takes them there, not in Blocks())."""
    return {"css": (STATIC / "worldwalk.css").read_text(), "js": (STATIC / "worldwalk.js").read_text(),
            "theme": _theme()}


def _md_error(msg) -> str:
    return f"⚠️ {scrub(msg)}"


class GuardedBlocks(gr.Blocks):
    """gr.Blocks whose events, page and API alike, refuse every file argument that is not a visitor's upload before
    Gradio opens or copies anything (files.Uploads; set as `uploads` by server.build_app once the app is mounted)."""

    uploads: Uploads | None = None

    async def preprocess_data(self, block_fn, inputs, state, explicit_call: bool = False):
        if self.uploads is None:
            raise gr.Error("the demo is not ready yet; try again in a moment", print_exception=False)
        for block, value in zip(block_fn.inputs, inputs):
            if getattr(block, "stateful", False):
                continue  # gr.State: kept on the server, never sent by the visitor
            what = getattr(block, "label", None) or type(block).__name__.lower()
            try:
                if isinstance(value, str) and isinstance(block, gr.File):
                    if value:
                        raise ValueError(f"{what}: {REFUSED}")
                else:
                    self.uploads.check(value, what)
            except ValueError as e:
                raise gr.Error(str(e), print_exception=False) from None
        return await super().preprocess_data(block_fn, inputs, state, explicit_call)


def find_scene(scenes: list[Scene], name) -> Scene:
    """A built-in start scene by name (case, spaces, '_' and '-' do not matter). Raises ValueError listing them."""
    key = " ".join(str(name or "").replace("_", " ").replace("-", " ").lower().split())
    for s in scenes:
        if s.name.lower() == key:
            return s
    raise ValueError(f"scene: {str(name)[:40]!r} is not a start scene; expected one of "
                     f"{', '.join(s.name for s in scenes)}")


def build_demo(manager: WalkManager, scenes: list[Scene], size_wh: tuple[int, int], frames_per_step: int,
               fps: float) -> gr.Blocks:
    lim = manager.limits
    W, H = size_wh
    outdir = manager.workdir / "api"
    outdir.mkdir(parents=True, exist_ok=True)

    def new_outdir() -> Path:
        d = outdir / uuid.uuid4().hex[:12]
        d.mkdir(parents=True)
        return d

    def uploads() -> Uploads:
        return demo.uploads

    def upload_image(path, what: str = "image") -> tuple[np.ndarray, str]:
        """An uploaded start image, decoded once and kept at the size the walk uses. -> (uint8 (h, w, 3), name)"""
        name = Path(str(path)).name
        return prepare_image(uploads().read(path, what, lim.max_upload_bytes), name, size_wh,
                             lim.max_upload_bytes), name

    # ------------------------------------------------------------------------------------------ page handlers
    # The start image is chosen by the last of gallery click, upload and clear that the visitor made: each bumps the
    # tab's pick number when it begins, and one that finishes after a newer pick began changes nothing (a slow upload
    # never overwrites what the visitor picked since). The chosen image itself lives in the tab's `choice` state, set
    # together with the preview: the walk always starts from the picture the page shows.
    picks: dict[str, int] = {}
    picks_lock = threading.Lock()

    def new_pick(request: gr.Request) -> int:
        with picks_lock:
            picks[request.session_hash] = picks.get(request.session_hash, 0) + 1
            return picks[request.session_hash]

    def still_latest(request: gr.Request, pick: int) -> bool:
        with picks_lock:
            return picks.get(request.session_hash) == pick

    def scene_choice(i) -> dict:
        return {"kind": "scene", "index": int(i) % len(scenes)}

    def chosen_image(choice: dict):
        if choice and choice.get("kind") == "upload":
            return choice["image"], choice.get("name", "your upload")
        s = scenes[int((choice or {}).get("index", 0)) % len(scenes)]
        return s.image, s.name

    def chosen_label(choice):
        return chosen_image(choice)[1]

    def on_scene(evt: gr.SelectData, request: gr.Request):
        new_pick(request)
        index = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        choice = scene_choice(index if isinstance(index, int) else 0)
        s = scenes[choice["index"]]
        return choice, s.image, f"Start scene: **{s.name}**", None

    def on_upload(path, choice, request: gr.Request):
        pick = new_pick(request)
        if not path:
            return gr.skip(), gr.skip(), "", gr.skip()
        try:
            img, name = upload_image(path, "your picture")
        except ValueError as e:
            if not still_latest(request, pick):
                return gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return (gr.skip(), gr.skip(), _md_error(f"{e}. The start image is still **{chosen_label(choice)}**."),
                    None)
        if not still_latest(request, pick):
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        return ({"kind": "upload", "image": img, "name": name, "index": int((choice or {}).get("index", 0))}, img,
                f"Start image: **{scrub(name)}**", gr.skip())

    def on_clear(choice, request: gr.Request):
        new_pick(request)
        c = scene_choice((choice or {}).get("index", 0))
        return c, scenes[c["index"]].image, f"Start scene: **{scenes[c['index']].name}**"

    def saved_downloads(w: LiveWalk, before: str):
        """Stop a recording in progress (a restart or reset would end it) -> (message, downloads update)."""
        if w.walker is None or not w.walker.recording:
            return "", gr.skip()
        _, mp4, side = w.record_stop()
        if mp4 is None:
            return "", gr.skip()
        return (f"Saved **{mp4.name}** {before}: download it below. ",
                downloads_html(w.token, mp4, side, w.saved.get(start_snapshot_path(mp4).name)))

    def on_start(choice, seed, token, request: gr.Request):
        owner = request.session_hash
        saved, links = "", gr.skip()
        try:
            seed = parse_seed(seed)
            image, label = chosen_image(choice)
            if token:
                with contextlib.suppress(WalkGone):
                    saved, links = saved_downloads(live(token, request), "before starting again")
            w = manager.start_live(owner, image, seed, label, token)
        except (ValueError, Busy) as e:
            return token, token or "", saved + _md_error(e), gr.update(), gr.update(), links
        if w.state == "waiting":
            msg = "⏳ " + manager.busy_message(manager.position(w.token))
        else:
            msg = (f"Walking in **{scrub(w.label)}** (seed {w.seed}). Click the view and use <kbd>W</kbd> <kbd>A</kbd> "
                   "<kbd>S</kbd> <kbd>D</kbd> to walk.")
        return w.token, w.token, saved + msg, gr.update(value=PAUSE), gr.update(value=RECORD), links

    def live(token, request: gr.Request) -> LiveWalk:
        w = manager.get(token, request.session_hash, "live")
        if w.state != "live" or w.walker is None:
            raise WalkGone("your walk has not started yet (you are in line)")
        return w

    def on_pause(token, request: gr.Request):
        try:
            paused = live(token, request).toggle_pause()
        except WalkGone as e:
            return gr.update(), _md_error(f"{e}. Press Start walking first.")
        return gr.update(value=RESUME if paused else PAUSE), ("Paused." if paused else "Walking again.")

    def on_command(name):
        def fn(token, request: gr.Request):
            try:
                return scrub(live(token, request).command(name))
            except WalkGone as e:
                return _md_error(f"{e}. Press Start walking first.")
        fn.__name__ = f"on_{name}"
        return fn

    def on_reset(token, request: gr.Request):
        saved, links = "", gr.skip()
        try:
            w = live(token, request)
            saved, links = saved_downloads(w, "before the reset")
            with manager.engine():
                w.restart()
        except (WalkGone, ValueError, Busy) as e:
            return gr.update(), saved + _md_error(e), links
        return gr.update(value=PAUSE), saved + f"Back at the start of **{scrub(w.label)}** (seed {w.seed}).", links

    def on_record(token, request: gr.Request):
        try:
            w = live(token, request)
            if not w.walker.recording:
                return gr.update(value=STOP_RECORD), w.record_start(), gr.skip()
            msg, mp4, side = w.record_stop()
        except WalkGone as e:
            return gr.update(), _md_error(f"{e}. Press Start walking first."), gr.skip()
        if mp4 is None:
            return gr.update(value=RECORD), msg, gr.skip()
        return (gr.update(value=RECORD), f"Saved as **{mp4.name}**: download it below.",
                downloads_html(w.token, mp4, side, w.saved.get(start_snapshot_path(mp4).name)))

    def on_unload(request: gr.Request):
        with picks_lock:
            picks.pop(request.session_hash, None)
        manager.release_owner(request.session_hash)

    # ------------------------------------------------------------------------------------------ API handlers
    def api_error(e: Exception):
        raise gr.Error(scrub(e), print_exception=False)

    def api_image(image, scene) -> np.ndarray:
        if image:
            return upload_image(image)[0]
        if scene:
            return find_scene(scenes, scene).image
        raise ValueError("image: upload an image (gradio_client.handle_file) or name a start scene "
                         f"({', '.join(s.name for s in scenes)})")

    def api_start(image, seed, scene, request: gr.Request):
        """Start a walk at `image` (or the start scene named `scene`) -> (walk_id, first frame, info)."""
        try:
            data = api_image(image, scene)
            w, first = manager.start_api(request.session_hash, data, parse_seed(seed))
        except (ValueError, Busy) as e:
            api_error(e)
        s = w.session
        return w.token, first[0], {"walk_id": w.token, "frames_per_step": s.frames_per_step, "fps": s.cfg.fps,
                                   "size_wh": list(s.size_wh), "intrinsics": np.asarray(s.intrinsics).tolist(),
                                   "frame_index": s.frame_index, "seed": s.seed}

    def parse_poses(text: str) -> np.ndarray:
        try:
            obj = json.loads(text) if isinstance(text, str) else text
        except json.JSONDecodeError as e:
            raise ValueError(f"poses: not valid JSON ({e.msg} at line {e.lineno})") from None
        if isinstance(obj, dict):
            obj = obj.get("c2w", obj.get("poses"))
        try:
            p = np.asarray(obj, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError("poses: expected a JSON list of 4x4 matrices") from None
        if p.ndim == 2 and p.shape == (4, 4):
            p = p[None]
        if p.ndim != 3 or p.shape[1:] != (4, 4):
            raise ValueError(f"poses: shape {p.shape}; expected (N, 4, 4) camera-to-world matrices")
        return p

    def api_step(walk_id, poses):
        """Walk on along `poses` (JSON (N, 4, 4), N a multiple of frames_per_step) -> (MP4, frames .npy, info)."""
        try:
            w = manager.get(walk_id, kind="api")
            p = parse_poses(poses)
            with manager.engine(), w.lock:
                s = w.session
                if s is None:
                    raise WalkGone("this walk has ended")
                n = s.frames_per_step
                if len(p) == 0 or len(p) % n:
                    raise ValueError(f"poses: {len(p)} poses; expected a multiple of {n} (frames_per_step)")
                if len(p) > lim.max_api_frames:
                    raise ValueError(f"poses: {len(p)} poses; at most {lim.max_api_frames} per call")
                w.touch()
                t0 = time.perf_counter()
                frames = []
                for i in range(0, len(p), n):
                    if manager.stopping:
                        raise Busy("the server is stopping; this walk has ended")
                    frames.append(s.step(p[i:i + n]))
                frames = np.concatenate(frames)
                elapsed = time.perf_counter() - t0
                w.touch()
                d = new_outdir()
                with VideoWriter(d / "frames.mp4", int(s.cfg.fps), s.size_wh) as v:
                    v.write(frames)
                np.save(d / "frames.npy", frames)
                info = {"walk_id": walk_id, "frames": len(frames), "frame_index": s.frame_index,
                        "frames_per_step": n, "seconds": round(elapsed, 3)}
        except (ValueError, WalkGone, Busy) as e:
            api_error(e)
        return str(d / "frames.mp4"), str(d / "frames.npy"), info

    def api_end(walk_id):
        """End a walk and free its memory."""
        try:
            manager.get(walk_id, kind="api")
        except WalkGone as e:
            api_error(e)
        manager.close(walk_id, "ended by the client")
        return f"walk {walk_id} ended"

    def api_render(image, trajectory_file, trajectory, seed, fov, scene):
        """Render a camera path from `image` (or the start scene `scene`) to MP4 -> (MP4, sidecar JSON, info)."""
        from worldwalk.controls import load_trajectory, trajectory_from_actions
        from worldwalk.controls.builtin import BUILTINS, load_builtin

        try:
            data = api_image(image, scene)
            seed = parse_seed(seed)
            text = (trajectory or "").strip()
            if trajectory_file:
                if not uploads().allowed(trajectory_file):
                    raise ValueError(f"trajectory_file: {REFUSED}")
                try:
                    traj = load_trajectory(trajectory_file)
                except ValueError as e:
                    raise ValueError(f"trajectory_file: {scrub(e)}") from None
                except OSError as e:
                    raise ValueError(f"trajectory_file: {Path(str(trajectory_file)).name}: cannot be read "
                                     f"({e.strerror or type(e).__name__})") from None
            elif text in BUILTINS:
                traj = load_builtin(text)
            elif text:
                traj = trajectory_from_actions(text)
            else:
                raise ValueError("trajectory: give a trajectory file, a built-in name "
                                 f"({', '.join(BUILTINS)}) or an action string like \"w-8,wl-5\"")
            with manager.job():
                session = manager.make_session()
                if abs(traj.fps - session.cfg.fps) > 1e-9:
                    traj = traj.resample(session.cfg.fps)
                traj = traj.relative_to_first()
                if traj.num_frames > lim.max_api_frames:
                    raise ValueError(f"trajectory: {traj.num_frames} frames; at most {lim.max_api_frames}")
                fov = float(fov) if fov not in (None, "", 0, 0.0) else None
                intr = None
                if fov is None and "intrinsics" not in traj.metadata.get("defaults", []):
                    intr = traj.resized(session.size_wh).intrinsics[0]
                first = session.start(data, seed=seed, fov_deg=fov, frame_intrinsics=intr)
                d = new_outdir()
                info = recording_info(session, manager.world_desc, session.window_chunks, None)
                t0 = time.perf_counter()
                with Recorder(d / "render.mp4", int(session.cfg.fps), session.size_wh, session.intrinsics,
                              info) as rec:
                    rec.add(first, traj.c2w[:1])
                    for poses in chunked_poses(traj.c2w, session.frames_per_step):
                        if manager.stopping:
                            raise Busy("the server is stopping; the render was cut short")
                        keep = traj.num_frames - rec.frames
                        rec.add(session.step(poses)[:keep], poses[:keep])
                n, fps_out = rec.frames, float(session.cfg.fps)
                del session
        except (ValueError, Busy) as e:
            api_error(e)
        out = {"frames": n, "fps": fps_out, "seconds": round(time.perf_counter() - t0, 3), "seed": seed}
        return str(d / "render.mp4"), str(d / "render.json"), out

    # ------------------------------------------------------------------------------------------ layout
    quiet = dict(api_visibility="private", show_progress="hidden", concurrency_limit=None)
    with GuardedBlocks(title="worldwalk — walk into a picture", delete_cache=(600, 3600)) as demo:
        token = gr.State(None)
        choice = gr.State({"kind": "scene", "index": 0})
        token_box = gr.Textbox(visible=False, elem_id="ww-token")
        gr.HTML("<div id='ww-title'><h1>worldwalk</h1><p>Give it one picture, then walk into the world it opens "
                "onto — every frame is generated live as you move.</p></div>")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=460):
                gr.HTML(VIEWPORT.format(aspect=f"{W} / {H}"), padding=False)
                with gr.Row(elem_classes="ww-controls"):
                    pause_btn = gr.Button(PAUSE, size="sm")
                    mark_btn = gr.Button("★ Bookmark", size="sm")
                    rewind_btn = gr.Button("↶ Rewind", size="sm")
                    reset_btn = gr.Button("↺ Reset", size="sm")
                    rec_btn = gr.Button(RECORD, size="sm")
                downloads = gr.HTML(downloads_html(), elem_id="ww-downloads", padding=False, js_on_load=None)
                gr.Markdown(HELP)
            with gr.Column(scale=2, min_width=320):
                gr.Markdown("**Where to start** — pick a scene, or upload a picture of your own",
                            elem_id="ww-pick")
                gallery = gr.Gallery(value=[(s.image, s.name) for s in scenes], label="Start scenes", show_label=False,
                                     columns=min(4, len(scenes)), height=128, allow_preview=False,
                                     selected_index=0, object_fit="cover", elem_id="ww-scenes")
                upload = gr.File(label=f"Your picture (PNG, JPEG or WebP, up to {lim.max_upload_bytes / 2**20:.0f} MB)",
                                 type="filepath", file_count="single", height=120, elem_id="ww-upload")
                preview = gr.Image(value=scenes[0].image, label="Start image", interactive=False, height=170,
                                   elem_id="ww-preview")
                with gr.Row(equal_height=True):
                    seed = gr.Number(value=0, precision=0, label="Seed", minimum=0, maximum=2**31 - 1, scale=1,
                                     elem_id="ww-seed")
                    start_btn = gr.Button("▶ Start walking", variant="primary", scale=2, elem_id="ww-start")
                status = gr.Markdown(f"Start scene: **{scenes[0].name}**", elem_id="ww-status")
                gr.Markdown(f"<small>{lim.max_walks} walk{'s' * (lim.max_walks != 1)} at a time · idle walks end "
                            f"after {lim.idle_timeout:.0f} s · {W}x{H} at {fps:g} fps, {frames_per_step} frames per "
                            "chunk</small>")

        gallery.select(on_scene, None, [choice, preview, status, upload], **quiet)
        upload.upload(on_upload, [upload, choice], [choice, preview, status, upload], trigger_mode="always_last",
                      **quiet)
        upload.clear(on_clear, [choice], [choice, preview, status], **quiet)
        start_btn.click(on_start, [choice, seed, token],
                        [token, token_box, status, pause_btn, rec_btn, downloads], **quiet
                        ).then(None, [token_box], None, js="(t) => { window.worldwalk?.attach(t); }", **quiet)
        pause_btn.click(on_pause, [token], [pause_btn, status], **quiet)
        mark_btn.click(on_command("bookmark"), [token], [status], **quiet)
        rewind_btn.click(on_command("rewind"), [token], [status], **quiet)
        reset_btn.click(on_reset, [token], [pause_btn, status, downloads], **quiet)
        rec_btn.click(on_record, [token], [rec_btn, status, downloads], **quiet)
        demo.unload(on_unload)

        # the API: hidden components wired to public endpoints
        with gr.Column(visible=False):
            a_image = gr.File(type="filepath", label="image")
            a_seed = gr.Number(value=0, precision=0, label="seed")
            a_walk = gr.Textbox(label="walk_id")
            a_frame = gr.Image(format="png", label="first frame")
            a_info = gr.JSON(label="info")
            a_poses = gr.Textbox(label="poses")
            a_video = gr.File(label="video")
            a_frames = gr.File(label="frames")
            a_traj_file = gr.File(type="filepath", label="trajectory_file")
            a_traj = gr.Textbox(label="trajectory")
            a_fov = gr.Number(value=0, label="fov")
            a_side = gr.File(label="sidecar")
            a_msg = gr.Textbox(label="message")
            a_scene = gr.Textbox(value="", label="scene")
            for fn, ins, outs, name, limit in (
                    (api_start, [a_image, a_seed, a_scene], [a_walk, a_frame, a_info], "start_walk", None),
                    (api_step, [a_walk, a_poses], [a_video, a_frames, a_info], "step_walk", lim.max_walks),
                    (api_end, [a_walk], [a_msg], "end_walk", None),
                    (api_render, [a_image, a_traj_file, a_traj, a_seed, a_fov, a_scene], [a_video, a_side, a_info],
                     "render", lim.max_walks)):
                gr.Button(visible=False).click(fn, ins, outs, api_name=name, concurrency_limit=limit)
    return demo

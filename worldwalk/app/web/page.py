"""The Gradio Blocks of the browser demo: the page people walk in, and the API `gradio_client` calls.

The page: a viewport (an <img> the page's script fills with JPEG frames pulled from the demo's own routes, a HUD, a
path map, key caps), buttons under it (pause, bookmark, rewind, reset, record, downloads) and a start panel (start
scenes, upload, seed, Start). Gradio events start and control the walk; the hot path (frames out, keys and mouse in)
bypasses Gradio's queue through the routes in app/web/server.py. The downloads are links to the demo's own route
(`worldwalk/download/<walk token>/walk-01.mp4`), never a file of Gradio's and never a path.

The layout and its wiring are here; the handlers are in handlers.py (the page) and api.py (the API). The API (same
engine, same cap on concurrent walks; the README documents it):
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

import html
from pathlib import Path

import gradio as gr

from worldwalk.app.web.api import ApiHandlers
from worldwalk.app.web.files import REFUSED, Uploads
from worldwalk.app.web.handlers import PAUSE, RECORD, PageHandlers
from worldwalk.app.web.scenes import Scene
from worldwalk.app.web.walks import WalkManager

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
**run** <kbd>Shift</kbd> · **speed** <kbd>+</kbd> <kbd>−</kbd> ·
**turn and look** <kbd>←</kbd> <kbd>→</kbd> <kbd>↑</kbd> <kbd>↓</kbd> or click the view for mouse-look
(<kbd>Esc</kbd> gives the mouse back).
**Bookmark** a place, walk on, **Rewind** to come back to it. **Record**, stop, then download the video and the
camera path (replay it with `launch.py render --replay`).

</div>
"""

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


def build_demo(manager: WalkManager, scenes: list[Scene], size_wh: tuple[int, int], frames_per_step: int,
               fps: float) -> gr.Blocks:
    """The page and the API: the layout here, the handlers in handlers.py (page) and api.py (API)."""
    lim = manager.limits
    W, H = size_wh
    page = PageHandlers(manager, scenes, size_wh, lambda: demo.uploads, downloads_html)
    api = ApiHandlers(manager, scenes, size_wh, lambda: demo.uploads)

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

        gallery.select(page.on_scene, None, [choice, preview, status, upload], **quiet)
        upload.upload(page.on_upload, [upload, choice], [choice, preview, status, upload],
                      trigger_mode="always_last", **quiet)
        upload.clear(page.on_clear, [choice], [choice, preview, status], **quiet)
        start_btn.click(page.on_start, [choice, seed, token],
                        [token, token_box, status, pause_btn, rec_btn, downloads], **quiet
                        ).then(None, [token_box], None, js="(t) => { window.worldwalk?.attach(t); }", **quiet)
        pause_btn.click(page.on_pause, [token], [pause_btn, status], **quiet)
        mark_btn.click(page.on_command("bookmark"), [token], [status], **quiet)
        rewind_btn.click(page.on_command("rewind"), [token], [status], **quiet)
        reset_btn.click(page.on_reset, [token], [pause_btn, status, downloads], **quiet)
        rec_btn.click(page.on_record, [token], [rec_btn, status, downloads], **quiet)
        demo.unload(page.on_unload)

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
                    (api.start, [a_image, a_seed, a_scene], [a_walk, a_frame, a_info], "start_walk", None),
                    (api.step, [a_walk, a_poses], [a_video, a_frames, a_info], "step_walk", lim.max_walks),
                    (api.end, [a_walk], [a_msg], "end_walk", None),
                    (api.render, [a_image, a_traj_file, a_traj, a_seed, a_fov, a_scene], [a_video, a_side, a_info],
                     "render", lim.max_walks)):
                gr.Button(visible=False).click(fn, ins, outs, api_name=name, concurrency_limit=limit)
    return demo

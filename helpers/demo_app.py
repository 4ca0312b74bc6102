"""The course's demo: a web page that says whether a face in a picture or a video is REAL or FAKE.

Start it with one command (``make demo`` runs the same)::

    python -m helpers.demo_app                          # notebook 04's best checkpoint
    python -m helpers.demo_app --checkpoint my.pth      # any checkpoint in that format
    python -m helpers.demo_app --port 8000 --share      # another port; a public link via Gradio

then open http://127.0.0.1:7860. The page has two tabs. *Picture*: upload a
photo; every face gets a box, a REAL/FAKE verdict with both confidences, and a
Grad-CAM heat map of where the model looked. *Video*: upload a clip (up to
``inference.MAX_VIDEO_SECONDS``); in evenly spaced frames the face of one
person (the most confidently detected, followed from frame to frame, as the
model's training crops were made) is scored, the scores are drawn as a
timeline and combined into one verdict for the video.

All the work is done by :mod:`helpers.inference` (the same functions notebook 07
calls); this module only lays out the page. Problems with an upload (no face, a
corrupt or too large file) are shown in the page as a message; the server keeps
serving.
"""
from __future__ import annotations

import argparse
import html
import logging
import os
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from . import inference  # noqa: E402  (the environment variable must be set before gradio is imported)

log = logging.getLogger("deepfake-demo")

DEFAULT_PORT = 7860
MAX_QUEUE = 16  # requests waiting for the model at most; more are turned away with "queue full"
# Fonts the browser already has: the page then needs nothing from the internet.
LOCAL_FONTS = ["ui-sans-serif", "system-ui", "Segoe UI", "Helvetica", "Arial", "sans-serif"]
LOCAL_MONO_FONTS = ["ui-monospace", "Consolas", "monospace"]

INTRO = """\
# Deepfake detector

Upload a **picture** or a **video** with a face. The model (InceptionResnetV1, trained in
notebook 04 of the course) scores each face: the probability that it is **fake**. The heat map
(Grad-CAM) shows which parts of the face pushed the score up. A video is judged on
evenly spaced frames, combined into one verdict; it follows one person, the most clearly
detected face (to judge someone else, crop the video to that person).

*A teaching model, trained on a small data set: do not rely on it for real decisions.*
"""


def _user_error(message: str):
    """A gr.Error for the page (its text is HTML, so escape it)."""
    import gradio as gr

    return gr.Error(html.escape(str(message)), title="Cannot analyse this file", print_exception=False)


def _run_safely(what: str, function, *args, **kwargs):
    """Call ``function``; turn any failure into a message in the page, never a stack trace."""
    try:
        return function(*args, **kwargs)
    except inference.DemoInputError as error:
        raise _user_error(error) from None
    except Exception as error:  # a bug or a broken model: log it for the operator, keep serving
        log.exception("Analysing the %s failed", what)
        raise _user_error(f"Something went wrong while analysing the {what} ({type(error).__name__}: {error}). "
                          "The server log has the details.") from None
    finally:
        release_freed_memory()


_LIBC = []


def _glibc():
    """The C library when it is GNU libc (Linux), else None; looked up once."""
    if not _LIBC:
        try:
            import ctypes

            libc = ctypes.CDLL("libc.so.6")
            _LIBC.append(libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None)
        except (OSError, AttributeError):
            _LIBC.append(None)
    return _LIBC[0]


def limit_malloc_arenas(arenas: int = 2) -> None:
    """Let at most ``arenas`` malloc pools serve the server's threads (Linux glibc; elsewhere nothing).

    Gradio runs each request on a worker thread, and glibc gives busy threads
    pools of their own; memory a request freed then stays in its thread's pool
    instead of serving the next request, and the server's memory creeps up
    with the number of threads. Two pools are enough for one model.
    """
    libc = _glibc()
    if libc is not None:
        libc.mallopt(-8, int(arenas))  # -8 is M_ARENA_MAX in glibc's malloc.h


def release_freed_memory() -> None:
    """Give memory the last request freed back to the system (``malloc_trim``; Linux glibc only)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def _details(result, kind: str) -> str:
    lines = [f"**{result.verdict}** — probability of fake {result.prob_fake:.3f}\n"]
    if result.verdict == "UNCERTAIN":  # helpers.calibration.choose_uncertain_band, chosen on validation data
        lines.append(f"The probability lies in the uncertain band [{result.band['low']:.2f}, {result.band['high']:.2f}] "
                     "around the threshold, where this model's validation verdicts were often wrong: "
                     "treat it as no answer.\n")
    lines += [f"\n**Warning:** {html.escape(warning)}" for warning in result.warnings]
    if kind == "image":
        lines.append(f"{result.n_faces} face(s) found; analysed in {result.seconds:.1f} s.\n")
        for k, face in enumerate(result.faces, start=1):
            lines.append(f"- face {k}: {face.verdict} ({face.prob_fake:.3f}), detector confidence {face.detection_prob:.2f}")
    else:
        lines.append(f"{result.n_frames_with_face} of {len(result.frame_indices)} sampled frames show a face; "
                     f"the face followed through the video is scored in each, and the video's score applies "
                     f"the '{result.rule}' rule to those scores; "
                     f"analysed in {result.seconds:.1f} s.")
    lines += [f"\n*{html.escape(note)}*" for note in result.notes]
    return "\n".join(lines)


def _readable_image_input(component):
    """Make a gr.Image report an unreadable upload with a clear message instead of a generic "Error".

    gr.Image opens the upload with Pillow before our function runs, so a corrupt
    file fails inside Gradio. Wrapping this one component's ``preprocess`` (not
    subclassing: Gradio writes a .pyi stub next to any module that subclasses a
    component) turns that failure into the same kind of message as our own checks.
    """
    import gradio as gr

    original = component.preprocess

    def preprocess(payload):
        try:
            return original(payload)
        except gr.Error:
            raise
        except Exception:
            name = getattr(payload, "orig_name", None) or "The file"
            raise _user_error(f"{name} could not be read as a picture (corrupt, or not a picture). "
                              "Try another file.") from None

    component.preprocess = preprocess
    return component


def limits_text() -> str:
    """The limits on what the page accepts, as shown at its foot (all from helpers.inference)."""
    frame_mp = inference.MAX_VIDEO_FRAME_PIXELS / 1e6
    work_mp = inference.WORK_FRAME_PIXELS / 1e6
    return (f"Limits: files up to {inference.MAX_FILE_MB} MB; pictures up to "
            f"{inference.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels; videos up to {inference.MAX_VIDEO_SECONDS} s with "
            f"frames up to {frame_mp:.1f} megapixels (4096 x 2160), scaled down to {work_mp:.1f} megapixels "
            f"(1920 x 1080) for the analysis; at most {inference.MAX_N_FRAMES} frames sampled per video, "
            f"decoded and analysed {inference.FRAMES_IN_MEMORY} at a time. One file is analysed at a time; "
            f"up to {MAX_QUEUE} more wait their turn.")


def build_app(predictor: inference.Predictor, n_frames: int = inference.DEFAULT_N_FRAMES):
    """The page: a Picture tab and a Video tab, both backed by ``predictor``."""
    import gradio as gr

    def analyse_image(path):
        if not path:
            raise _user_error("Upload a picture first.")
        result = _run_safely("picture", predictor.predict_image, path)
        gallery = [(face.overlay if face.overlay is not None else face.crop,
                    f"face {k}: {face.label} {face.prob_fake:.2f}") for k, face in enumerate(result.faces, start=1)]
        return result.confidences, result.overlay, result.annotated, gallery, _details(result, "image")

    def analyse_video(path, frames):
        if not path:
            raise _user_error("Upload a video first.")
        result = _run_safely("video", predictor.predict_video, path, n_frames=frames)
        table = result.timeline_table().dropna(subset=["prob_fake"])
        return result.confidences, result.overlay, result.annotated, table, _details(result, "video")

    with gr.Blocks(title="Deepfake detector") as app:
        gr.Markdown(INTRO, elem_id="intro")
        with gr.Tabs(elem_id="tabs"):
            with gr.Tab("Picture", id="picture-tab", elem_id="picture-tab"):
                with gr.Row():
                    with gr.Column():
                        image_in = _readable_image_input(gr.Image(
                            label="Picture with a face", type="filepath", image_mode=None,
                            sources=["upload", "clipboard"], height=360, elem_id="image-input"))
                        image_button = gr.Button("Analyse picture", variant="primary", elem_id="image-button")
                        image_annotated = gr.Image(label="Faces found", interactive=False, height=360,
                                                   elem_id="image-annotated")
                    with gr.Column():
                        image_label = gr.Label(label="Verdict (most suspicious face)", num_top_classes=2,
                                               elem_id="image-label")
                        image_cam = gr.Image(label="Explanation (Grad-CAM)", interactive=False,
                                             elem_id="image-explanation")
                        image_faces = gr.Gallery(label="Every face", columns=4, height="auto",
                                                 elem_id="image-faces")
                        image_details = gr.Markdown(elem_id="image-details")
            with gr.Tab("Video", id="video-tab", elem_id="video-tab"):
                with gr.Row():
                    with gr.Column():
                        video_in = gr.Video(label=f"Video with a face (up to {inference.MAX_VIDEO_SECONDS} s)",
                                            sources=["upload"], include_audio=True, height=360,
                                            elem_id="video-input")
                        video_frames = gr.Slider(1, inference.MAX_N_FRAMES, value=n_frames, step=1,
                                                 label="Frames to sample", elem_id="video-frames")
                        video_button = gr.Button("Analyse video", variant="primary", elem_id="video-button")
                        video_annotated = gr.Image(label="Most suspicious frame", interactive=False, height=360,
                                                   elem_id="video-annotated")
                    with gr.Column():
                        video_label = gr.Label(label="Verdict for the video", num_top_classes=2,
                                               elem_id="video-label")
                        video_cam = gr.Image(label="Explanation (Grad-CAM, face in the most suspicious frame)",
                                             interactive=False, elem_id="video-explanation")
                        video_timeline = gr.LinePlot(x="time_s", y="prob_fake", y_lim=[0, 1],
                                                     x_title="time (s)", y_title="P(fake)",
                                                     label="Probability of fake, frame by frame",
                                                     elem_id="video-timeline")
                        video_details = gr.Markdown(elem_id="video-details")
        gr.Markdown(limits_text() + f" Model: `{predictor!r}`.", elem_id="footer")

        image_outputs = [image_label, image_cam, image_annotated, image_faces, image_details]
        video_outputs = [video_label, video_cam, video_annotated, video_timeline, video_details]
        image_in.upload(analyse_image, inputs=image_in, outputs=image_outputs, concurrency_id="model")
        image_button.click(analyse_image, inputs=image_in, outputs=image_outputs, concurrency_id="model")
        video_in.upload(analyse_video, inputs=[video_in, video_frames], outputs=video_outputs,
                        concurrency_id="model")
        video_button.click(analyse_video, inputs=[video_in, video_frames], outputs=video_outputs,
                           concurrency_id="model")
    return app


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m helpers.demo_app", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=None,
                        help="checkpoint in notebook 04's format (default: the best one notebook 04 saved)")
    parser.add_argument("--port", type=_bounded_int(1, 65535), default=os.environ.get("GRADIO_SERVER_PORT", DEFAULT_PORT),
                        help=f"port to serve on (default {DEFAULT_PORT})")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on; 0.0.0.0 makes the page reachable from other machines")
    parser.add_argument("--share", action="store_true", help="also create a temporary public link (gradio.live)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--n-frames", type=_bounded_int(1, inference.MAX_N_FRAMES), default=inference.DEFAULT_N_FRAMES,
                        help=f"frames sampled per video, 1 to {inference.MAX_N_FRAMES} (default %(default)s)")
    return parser.parse_args(argv)


def _bounded_int(low: int, high: int):
    """An argparse type: a whole number from ``low`` to ``high`` (argparse prints the message and exits)."""
    def parse(text):
        try:
            value = int(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"expected a whole number from {low} to {high}, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected a whole number from {low} to {high}, got {value}")
        return value
    return parse


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    limit_malloc_arenas()
    try:
        predictor = inference.load_predictor(args.checkpoint, device=args.device)
    except inference.NoCheckpointError as error:
        print(error, file=sys.stderr)
        return 2
    except Exception as error:  # an unreadable checkpoint: models_torch says what is wrong with it
        print(f"Could not load the checkpoint: {error}", file=sys.stderr)
        return 2
    print(f"Loaded {predictor!r}; warming up ...", flush=True)
    try:
        predictor.warm_up()  # so that the first visitor does not wait for imports
    except Exception as error:  # e.g. a model that does not fit its recorded input size
        print(f"The checkpoint loaded but the model cannot analyse a face ({type(error).__name__}: {error}). "
              "Retrain it with notebooks/04_inception_resnet.ipynb or pass another --checkpoint.", file=sys.stderr)
        return 2

    import gradio as gr

    app = build_app(predictor, n_frames=args.n_frames)
    app.queue(default_concurrency_limit=1, max_size=MAX_QUEUE)
    app.launch(server_name=args.host, server_port=args.port, share=args.share, show_error=False,
               max_file_size=f"{inference.MAX_FILE_MB}mb", footer_links=[],
               theme=gr.themes.Default(font=LOCAL_FONTS, font_mono=LOCAL_MONO_FONTS))
    return 0


if __name__ == "__main__":
    sys.exit(main())

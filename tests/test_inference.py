"""helpers.inference: the prediction path shared by notebook 07 and the Gradio demo.

A random-initialised InceptionResnetV1 stands in for a trained model: the
checks here are about inputs, shapes and messages, not about accuracy.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import evaluation, inference, sample_data


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    import torch

    from helpers import models_torch

    torch.manual_seed(0)
    model = models_torch.build_inception_classifier(pretrained=False)
    path = tmp_path_factory.mktemp("ckpt") / "random_inception.pth"
    return models_torch.save_checkpoint(model, path, epoch=0, image_size=160, trained_on="nothing (test)")


@pytest.fixture(scope="module")
def predictor(checkpoint):
    return inference.load_predictor(checkpoint, device="cpu")


@pytest.fixture(scope="module")
def inputs(workspace):
    """A face photo, a short face clip and a clip without a face, made once per workspace."""
    folder = workspace / "inference_inputs"
    folder.mkdir(exist_ok=True)
    face_clip, empty_clip = folder / "face_clip.mp4", folder / "empty_clip.mp4"
    if not face_clip.exists():
        sample_data.make_clip(face_clip, width=320, height=240, seconds=1.0, fake=True, seed=3, fps=10)
    if not empty_clip.exists():
        sample_data.make_clip(empty_clip, width=320, height=240, seconds=1.0, has_face=False, seed=4, fps=10)
    return {"photo": sample_data.portrait_path(), "face_clip": face_clip, "empty_clip": empty_clip}


# ---------------------------------------------------------------------------- input checks


def test_the_demo_takes_every_video_the_folder_source_takes(tmp_path):
    from helpers import data_sources, video_frames

    assert inference.VIDEO_EXTENSIONS is data_sources.VIDEO_EXTENSIONS is video_frames.VIDEO_EXTENSIONS
    clip = tmp_path / "old.mpg"
    clip.write_bytes(b"\0" * 16)  # the type is decided by the ending; reading it comes later
    assert inference.check_file(clip) == (clip, "video")


def test_unsupported_file_type(tmp_path, predictor):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture")
    with pytest.raises(inference.DemoInputError, match=r"Unsupported file type \(\.txt\)"):
        predictor.predict_file(notes)
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"a video, but the picture tab was used")
    with pytest.raises(inference.DemoInputError, match=r"Unsupported file type \(\.mp4\).*upload a picture"):
        predictor.predict_image(clip)


def test_missing_file(tmp_path, predictor):
    with pytest.raises(inference.DemoInputError, match="File not found"):
        predictor.predict_image(tmp_path / "nowhere.jpg")


def test_corrupt_picture(tmp_path, predictor):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"definitely not image data" * 20)
    with pytest.raises(inference.DemoInputError, match="could not be read as a picture"):
        predictor.predict_image(broken)


def test_corrupt_video(tmp_path, predictor, inputs):
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    with pytest.raises(inference.DemoInputError, match="could not be read as a video"):
        predictor.predict_video(garbage)
    # a real clip cut short: the header survives, the frames do not
    data = inputs["face_clip"].read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 3])
    with pytest.raises(inference.DemoInputError, match="could not be read as a video|No face found|No frame"):
        predictor.predict_video(truncated)


def test_empty_file(tmp_path, predictor):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(inference.DemoInputError, match="empty"):
        predictor.predict_image(empty)


def test_too_large_file(tmp_path, predictor):
    big = tmp_path / "big.mp4"
    with open(big, "wb") as handle:  # sparse: takes no disk space
        handle.truncate((inference.MAX_FILE_MB + 1) * 2**20)
    with pytest.raises(inference.DemoInputError, match=rf"up to {inference.MAX_FILE_MB} MB"):
        predictor.predict_video(big)


def test_too_many_pixels(predictor, monkeypatch):
    monkeypatch.setattr(inference, "MAX_IMAGE_PIXELS", 100 * 100)
    with pytest.raises(inference.DemoInputError, match="megapixels"):
        predictor.predict_image(np.zeros((200, 200, 3), np.uint8))


def test_too_long_video(predictor, inputs, monkeypatch):
    monkeypatch.setattr(inference, "MAX_VIDEO_SECONDS", 0.5)
    with pytest.raises(inference.DemoInputError, match=r"lasts 1 s; the demo accepts videos up to 0.5 s"):
        predictor.predict_video(inputs["face_clip"])


def test_no_face_in_picture(predictor):
    grey = np.full((240, 320, 3), 128, np.uint8)
    with pytest.raises(inference.DemoInputError, match="No face found in the picture"):
        predictor.predict_image(grey)


def test_no_face_in_video(predictor, inputs):
    with pytest.raises(inference.DemoInputError, match="No face found in any of the 4 frames"):
        predictor.predict_video(inputs["empty_clip"], n_frames=4)


# ---------------------------------------------------------------------------- predictions


def test_picture_prediction(predictor, inputs):
    result = predictor.predict_image(inputs["photo"])
    photo = np.asarray(Image.open(inputs["photo"]).convert("RGB"))
    assert result.n_faces == 1 and not result.notes
    face = result.faces[0]
    x1, y1, x2, y2 = face.box
    assert 0 <= x1 < x2 <= photo.shape[1] and 0 <= y1 < y2 <= photo.shape[0]
    assert 0.0 <= result.prob_fake <= 1.0 and result.label in ("REAL", "FAKE")
    assert result.label == ("FAKE" if result.prob_fake >= 0.5 else "REAL")
    assert result.confidences["fake"] == pytest.approx(result.prob_fake)
    assert sum(result.confidences.values()) == pytest.approx(1.0)
    assert result.overlay.shape == (160, 160, 3) and result.overlay.dtype == np.uint8
    assert result.annotated.shape == photo.shape and not np.array_equal(result.annotated, photo)
    # a PIL image and an array give the same answer as the path
    again = predictor.predict_image(Image.open(inputs["photo"]), explain=False)
    assert again.prob_fake == pytest.approx(result.prob_fake, abs=1e-5) and again.overlay is None


def test_several_faces_are_each_scored(predictor, inputs):
    photo = np.asarray(Image.open(inputs["photo"]).convert("RGB"))
    mirrored = photo[:, ::-1]
    pair = np.concatenate([photo, mirrored], axis=1)
    result = predictor.predict_image(pair)
    assert result.n_faces == 2
    assert "2 faces found" in result.notes[0]
    centres = sorted((f.box[0] + f.box[2]) / 2 for f in result.faces)
    assert centres[0] < photo.shape[1] < centres[1]  # one face in each half
    assert result.prob_fake == max(f.prob_fake for f in result.faces)
    assert all(f.overlay is not None for f in result.faces)


def test_video_prediction(predictor, inputs):
    result = predictor.predict_video(inputs["face_clip"], n_frames=5)
    assert len(result.frame_indices) == 5 and len(result.frame_probs) == 5
    assert result.frame_indices == sorted(result.frame_indices)
    scored = [p for p in result.frame_probs if p is not None]
    assert scored and result.n_frames_with_face == len(scored)
    assert result.prob_fake == pytest.approx(evaluation.AGGREGATORS[result.rule](scored))
    assert result.label in ("REAL", "FAKE") and sum(result.confidences.values()) == pytest.approx(1.0)
    assert all(f.frame_index in result.frame_indices for f in result.faces)
    assert result.overlay is not None and result.overlay.dtype == np.uint8
    assert result.annotated.shape == (240, 320, 3)  # the clip's frame, decoded again for the picture
    assert result.explained.frame_index in result.frame_indices
    table = result.timeline_table()
    assert list(table.columns) == ["frame_index", "time_s", "prob_fake"] and len(table) == 5
    assert table["time_s"].is_monotonic_increasing
    summary = result.summary()
    assert summary["timeline"] == [None if p is None else pytest.approx(p) for p in result.frame_probs]
    mean_rule = predictor.predict_video(inputs["face_clip"], n_frames=5, explain=False, rule="mean")
    assert mean_rule.prob_fake == pytest.approx(float(np.mean(scored)), abs=1e-6)


def _brightness_model():
    """A stand-in model whose answer is known in advance: P(fake) rises with a face crop's mean brightness
    (logit = 10 x (mean - 0.5)). The real detector and model are tested above."""
    import torch

    class Brightness(torch.nn.Module):
        def forward(self, x):
            return 10 * (x.mean(dim=(1, 2, 3)) - 0.5).unsqueeze(1)

    return Brightness()


class _TwoPeople:
    """A face detector for a video in which two people are seen in every frame.

    Person A (left) is the most confident face of the whole video (in its first
    frame), so the track follows her; person B (right) is detected more
    confidently than A in every later frame and always looks more fake (a
    brighter crop). Crops are handed out in the order the frames arrive.
    """

    def __init__(self, levels_a, levels_b, size=32):
        self.crops = [[np.full((size, size, 3), round(255 * level), np.uint8) for level in pair]
                      for pair in zip(levels_a, levels_b)]
        self.seen = 0

    def detect(self, frames):
        from helpers.face_detector import Face

        found = []
        for frame in frames:
            h, w = frame.shape[:2]
            crop_a, crop_b = self.crops[self.seen]
            drift = 0.01 * self.seen * w  # A moves a little to the right, B stays
            a = Face(box=(0.1 * w + drift, 0.3 * h, 0.35 * w + drift, 0.7 * h), prob=0.999 if self.seen == 0 else 0.90,
                     landmarks=np.zeros((5, 2)), crop=crop_a)
            b = Face(box=(0.6 * w, 0.3 * h, 0.85 * w, 0.7 * h), prob=0.95, landmarks=np.zeros((5, 2)), crop=crop_b)
            found.append(sorted([a, b], key=lambda face: -face.prob))  # most confident first, as FaceDetector
            self.seen += 1
        return found


LEVELS_A = [0.30, 0.40, 0.62, 0.45, 0.35, 0.50]  # the tracked person: most suspicious in frame 2
LEVELS_B = [0.70, 0.72, 0.74, 0.76, 0.78, 0.90]  # the other one: more suspicious everywhere, most in frame 5
BACKGROUNDS = [20 + 40 * k for k in range(6)]    # each frame's grey level tells which frame it is


@pytest.fixture(scope="module")
def two_people_clip(workspace):
    path = workspace / "inference_inputs" / "two_people_6f.mp4"
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        frames = (np.full((240, 320, 3), level, np.uint8) for level in BACKGROUNDS)
        sample_data.write_video(path, frames, 320, 240, fps=6, crf=18)
    return path


def test_a_video_follows_the_tracked_person_not_the_most_suspicious_face(two_people_clip, monkeypatch):
    predictor = inference.Predictor(_brightness_model(), {"image_size": 32}, device="cpu",
                                    detector=_TwoPeople(LEVELS_A, LEVELS_B))
    monkeypatch.setattr(inference, "FRAMES_IN_MEMORY", 4)  # the track runs across two chunks
    monkeypatch.setattr(inference, "WORK_FRAME_PIXELS", 160 * 120)  # frames are analysed at half size
    result = predictor.predict_video(two_people_clip, n_frames=6, explain=False, rule="mean")
    detector = predictor.detector
    tracked = predictor.score_faces([a for a, _ in detector.crops])
    other = predictor.score_faces([b for _, b in detector.crops])
    assert (other > tracked).all()  # the other person would win under "the most suspicious face"
    assert result.frame_indices == list(range(6))
    assert result.frame_probs == pytest.approx(list(tracked))
    assert result.prob_fake == pytest.approx(float(np.mean(tracked)))
    assert abs(result.prob_fake - float(np.mean(other))) > 0.1
    assert [f.frame_index for f in result.faces] == list(range(6))
    assert all((f.box[0] + f.box[2]) / 2 < 80 for f in result.faces)  # every face judged is A's (left half)
    assert result.explained.frame_index == 2 and result.explained.prob_fake == pytest.approx(tracked.max())
    # the frame shown is frame 2 (not B's frame 5), decoded again at the analysed size, A drawn, B grey
    picture = result.annotated
    assert picture.shape == (120, 160, 3)
    assert abs(float(picture[108:118, 60:100].mean()) - BACKGROUNDS[2]) < 6
    x1, y1, _, y2 = (int(round(v)) for v in result.explained.box)
    assert tuple(picture[(y1 + y2) // 2, x1]) == (220, 40, 40)  # FAKE: a red box
    assert tuple(picture[60, 96]) == inference.OTHER_FACE_COLOUR  # B: grey, not judged
    note = next(n for n in result.notes if "Up to 2 faces" in n)
    assert "one person" in note and "crop the video" in note
    assert not any("each is scored" in n for n in result.notes)


def _arrays_in(value):
    """Every array held by ``value`` (through lists, tuples, dicts and dataclasses)."""
    import dataclasses

    if isinstance(value, np.ndarray) or (hasattr(value, "shape") and hasattr(value, "dtype")):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _arrays_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _arrays_in(item)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for item in dataclasses.fields(value):
            yield from _arrays_in(getattr(value, item.name))


def test_a_video_keeps_the_faces_found_not_the_frames(predictor, inputs, monkeypatch):
    states, largest = [], []
    analyse = predictor._analyse_chunk

    def watching(chunk, state):
        analyse(chunk, state)
        states.append(state)
        largest.append(max((int(np.prod(a.shape)) for a in _arrays_in(state)), default=0))

    monkeypatch.setattr(inference, "FRAMES_IN_MEMORY", 3)
    monkeypatch.setattr(predictor, "_analyse_chunk", watching)
    result = predictor.predict_video(inputs["face_clip"], n_frames=8, explain=False)
    frame_size, crop_size = 240 * 320 * 3, predictor.image_size ** 2 * 3
    assert len(largest) == 3 and 0 < max(largest) <= crop_size < frame_size  # crops, never a frame
    state = states[-1]
    assert len(state.detections) == len(state.indices) == 8
    assert result.n_faces == sum(bool(found) for found in state.detections)  # one tracked face per frame with faces
    assert result.annotated.shape == (240, 320, 3)


def test_predict_file_dispatches_on_extension(tmp_path, predictor):
    (tmp_path / "a.png").write_bytes(b"broken")
    (tmp_path / "a.mp4").write_bytes(b"broken")
    with pytest.raises(inference.DemoInputError, match="could not be read as a picture"):
        predictor.predict_file(tmp_path / "a.png")
    with pytest.raises(inference.DemoInputError, match="could not be read as a video"):
        predictor.predict_file(tmp_path / "a.mp4")


# ---------------------------------------------------------------------------- checkpoints


def test_no_checkpoint_says_how_to_make_one(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPFAKE_DATA_DIR", str(tmp_path / "empty-data"))
    with pytest.raises(inference.NoCheckpointError) as caught:
        inference.load_predictor()
    message = str(caught.value)
    assert "04_inception_resnet.ipynb" in message and "make course" in message and "--checkpoint" in message
    assert str(tmp_path / "empty-data") in message
    with pytest.raises(inference.NoCheckpointError, match="does not exist"):
        inference.load_predictor(tmp_path / "missing.pth")


def test_predictor_follows_checkpoint_metadata(tmp_path, checkpoint):
    from helpers import model_registry, models_torch

    model, _ = model_registry.load_checkpoint(checkpoint)
    path = models_torch.save_checkpoint(model, tmp_path / "tuned.pth", epoch=3, image_size=128,
                                        threshold=0.7, video_rule="mean")
    predictor = inference.load_predictor(path, device="cpu")
    assert (predictor.image_size, predictor.threshold, predictor.rule) == (128, 0.7, "mean")
    assert inference.label_of(0.65, predictor.threshold) == "REAL"


def test_demo_app_without_checkpoint_exits_with_the_message(tmp_path, monkeypatch, capsys):
    from helpers import demo_app

    monkeypatch.setenv("DEEPFAKE_DATA_DIR", str(tmp_path / "empty-data"))
    assert demo_app.main([]) == 2
    assert "04_inception_resnet.ipynb" in capsys.readouterr().err
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"not a checkpoint")
    assert demo_app.main(["--checkpoint", str(broken)]) == 2
    assert "not a readable PyTorch checkpoint" in capsys.readouterr().err


def test_demo_app_turns_input_errors_into_page_messages():
    import gradio as gr

    from helpers import demo_app

    def refuse():
        raise inference.DemoInputError("No face found in <b>x</b>.jpg")

    def crash():
        raise RuntimeError("boom")

    with pytest.raises(gr.Error) as caught:
        demo_app._run_safely("picture", refuse)
    assert caught.value.message == "No face found in &lt;b&gt;x&lt;/b&gt;.jpg"
    with pytest.raises(gr.Error, match="Something went wrong while analysing the picture"):
        demo_app._run_safely("picture", crash)


# ---------------------------------------------------------------------------- memory bounds


def test_video_is_analysed_a_few_frames_at_a_time(predictor, inputs, monkeypatch):
    seen = []
    detect = predictor._detect

    def counting(frames):
        seen.append(len(frames))
        return detect(frames)

    monkeypatch.setattr(inference, "FRAMES_IN_MEMORY", 3)
    monkeypatch.setattr(predictor, "_detect", counting)
    result = predictor.predict_video(inputs["face_clip"], n_frames=8, explain=False)
    assert seen == [3, 3, 2] and len(result.frame_indices) == 8
    # the same verdict as with every frame at once
    monkeypatch.setattr(inference, "FRAMES_IN_MEMORY", 64)
    whole = predictor.predict_video(inputs["face_clip"], n_frames=8, explain=False)
    assert whole.frame_probs == pytest.approx(result.frame_probs) and whole.prob_fake == pytest.approx(result.prob_fake)


def test_frames_beyond_the_work_size_are_scaled_down():
    frame = np.zeros((2160, 3840, 3), np.uint8)
    small = inference.fit_pixels(frame)
    assert small.shape[0] * small.shape[1] <= inference.WORK_FRAME_PIXELS
    assert small.shape[1] / small.shape[0] == pytest.approx(3840 / 2160, rel=0.01)
    unchanged = np.zeros((480, 640, 3), np.uint8)
    assert inference.fit_pixels(unchanged) is unchanged


def test_a_video_damaged_part_way_is_judged_on_the_frames_before(predictor, inputs, monkeypatch):
    from helpers import video_frames

    real_iter = video_frames.iter_frames_by_index

    def breaks_after_three(path, indices, **options):
        for count, item in enumerate(real_iter(path, indices, **options)):
            if count == 3:
                raise video_frames.VideoReadError(f"{Path(path).name} could not be read as a video (damaged).")
            yield item

    monkeypatch.setattr(video_frames, "iter_frames_by_index", breaks_after_three)
    result = predictor.predict_video(inputs["face_clip"], n_frames=6, explain=False)
    assert len(result.frame_indices) == 3
    assert any(f"damaged after frame {result.frame_indices[-1]}" in note for note in result.notes), result.notes


# ---------------------------------------------------------------------------- unsure verdicts and unusual input


def _calibrated(predictor, **options):
    """The same model and detector, with notebook 09's extras (band, input reference, temperature)."""
    return inference.Predictor(predictor.model, predictor.metadata, device="cpu", detector=predictor.detector,
                               **options)


def test_a_score_inside_the_band_is_uncertain_and_the_demo_says_so(predictor, inputs):
    from helpers import demo_app

    plain = predictor.predict_image(inputs["photo"], explain=False)
    assert plain.verdict == plain.label and plain.warnings == [] and plain.summary()["verdict"] == plain.label
    around = {"low": plain.prob_fake - 0.01, "high": plain.prob_fake + 0.01, "half_width": 0.01, "threshold": 0.5}
    unsure = _calibrated(predictor, band=around).predict_image(inputs["photo"], explain=False)
    assert unsure.verdict == "UNCERTAIN" and unsure.label in ("REAL", "FAKE")  # the binary label stays
    assert unsure.summary()["verdict"] == "UNCERTAIN" and unsure.faces[0].verdict == "UNCERTAIN"
    elsewhere = {**around, "low": plain.prob_fake + 0.1, "high": plain.prob_fake + 0.2}
    assert _calibrated(predictor, band=elsewhere).predict_image(inputs["photo"], explain=False).verdict == plain.label
    details = demo_app._details(unsure, "image")
    assert details.startswith("**UNCERTAIN**") and "uncertain band" in details


def test_a_face_much_smaller_than_in_training_gets_a_warning(predictor, inputs):
    from helpers import demo_app

    plain = predictor.predict_image(inputs["photo"], explain=False)
    size = max(plain.faces[0].box[2] - plain.faces[0].box[0], plain.faces[0].box[3] - plain.faces[0].box[1])
    large_training_faces = {"median_face_size": 4 * size, "min_face_size": 2 * size, "min_detection_prob": 0.5}
    like_training = {"median_face_size": size, "min_face_size": size / 2, "min_detection_prob": 0.5}
    warned = _calibrated(predictor, input_reference=large_training_faces).predict_image(inputs["photo"], explain=False)
    assert len(warned.warnings) == 1 and "small" in warned.warnings[0] and warned.summary()["warnings"] == warned.warnings
    assert "**Warning:**" in demo_app._details(warned, "image")
    assert _calibrated(predictor, input_reference=like_training).predict_image(inputs["photo"], explain=False).warnings == []
    video = _calibrated(predictor, input_reference=large_training_faces).predict_video(inputs["face_clip"], n_frames=3,
                                                                                      explain=False)
    assert len(video.warnings) == 1 and "small" in video.warnings[0]


def test_the_checkpoint_can_carry_band_reference_and_temperature(tmp_path, checkpoint, predictor, inputs):
    from helpers import calibration, models_torch

    model, _ = models_torch.load_checkpoint(checkpoint)
    band = {"low": 0.4, "high": 0.6, "half_width": 0.1, "threshold": 0.5}
    path = models_torch.save_checkpoint(model, tmp_path / "calibrated.pth", epoch=1, image_size=160, temperature=2.0,
                                        uncertain_band=band, input_reference={"median_face_size": 10.0,
                                                                              "min_face_size": 5.0,
                                                                              "min_detection_prob": 0.5})
    loaded = inference.load_predictor(path, device="cpu")
    assert loaded.temperature == 2.0 and loaded.band == band and loaded.input_reference["min_face_size"] == 5.0
    crop = predictor.predict_image(inputs["photo"], explain=False).faces[0].crop
    raw, softened = predictor.score_faces([crop])[0], loaded.score_faces([crop])[0]
    assert softened == pytest.approx(calibration.apply_temperature([raw], 2.0)[0], abs=1e-5)
    assert abs(softened - 0.5) <= abs(raw - 0.5)

"""Helper package for the deepfake video detection course.

The modules follow the course's pipeline, one owner per stage, in the order of
:data:`STAGES` below (a module imports modules of its own or earlier stages only):

    config            paths, caches and run profiles (smoke / standard / full)
    safe_io           guarded reading of the files a user supplies, all-or-nothing writes
    reproducibility   seeds
    gpu               device choice, a GPU memory cap, peak-memory reports
    results           saving figures, recording measured numbers, JSON-plain values
    geometry          the five face landmarks, the alignment template, similarity transforms
    metadata          metadata.json, its checks, and the train/val/test splits of every source
    kaggle_data       Kaggle credentials, what to do without them, the DFDC archive download
    environment       your machine, Colab or Kaggle Notebooks: what each one needs
    cache             the classroom cache of downloads (make prefetch, DEEPFAKE_CACHE)
    video_frames      evenly spaced frame sampling, the video file endings
    sample_data       the built-in synthetic face-swap sample
    data_sources      the three sources (sample, Kaggle DFDC, your folder) -> one dataset folder
    face_detector     MTCNN face detection, square crops, one tracked face per video
    crop_manifest     the crop manifest: its columns and statuses, writing and reading it, crops
    faces             a whole dataset to crops: sampled frames, reader threads, resumable runs
    datasets_torch    PyTorch datasets over the crop manifest
    datasets_keras    Keras sequence loader over the crop manifest
    sbi               Self-Blended Images: pseudo-fakes made from real faces (notebook 09)
    models_torch      InceptionResnetV1 classifier and the checkpoint file format
    models_compare    custom CNN, MesoNet, DenseNet121
    models_keras      ResNet50 + LSTM video model
    model_registry    every PyTorch classifier by name: builder, Grad-CAM layer, display name, checkpoints
    training_torch    training loop for the PyTorch face classifiers
    evaluation        metrics, frame -> video aggregation, scoring faces, choosing the video rule
    calibration       ECE, Brier, temperature scaling, the uncertain band, input warnings, EER, AP
    explain           Grad-CAM for both frameworks, overlays, region shares of aligned maps
    tta               test-time augmentation and the degradations (JPEG, downscaling, blur)
    plots             the figures notebooks draw (tables, curves, heat maps, Grad-CAM panels)
    inference         one prediction function shared by notebooks and the demo
    demo_app          the Gradio app
    distributed       face extraction and scoring on Ray Data
    course            runs the notebooks (the course and its tests)

Import the module you need, e.g. ``from helpers import config``; nothing heavy
(torch, TensorFlow) is imported by importing the package itself.
"""
__version__ = "0.1.0"

# The package's stages, earliest first. A module may import modules of its own
# stage or of an earlier one, never of a later one, and no imports may go round
# in a circle (tests/test_layering.py reads every import and checks both).
STAGES = (
    ("config", "safe_io", "reproducibility", "gpu", "results", "geometry"),  # foundations
    ("metadata",),                                                    # the one dataset format, splits
    ("kaggle_data", "environment", "cache"),                          # where the course runs, downloads
    ("video_frames", "sample_data", "data_sources"),                  # the videos of each source
    ("face_detector", "crop_manifest"),                               # the detector; the crops' table
    ("faces",),                                                       # a whole dataset -> crops + manifest
    ("datasets_torch", "datasets_keras", "sbi"),                      # loaders over the crops, SBI pseudo-fakes
    ("models_torch", "models_compare", "models_keras"),               # the networks and their checkpoints
    ("model_registry",),                                              # every PyTorch classifier by name
    ("training_torch",),                                              # training loops
    ("evaluation", "calibration"),                                    # metrics, video rules, scoring, calibration
    ("explain", "tta"),                                               # Grad-CAM; TTA and degradations
    ("plots",),                                                       # figures
    ("inference",),                                                   # the one prediction function
    ("demo_app", "distributed", "course"),                            # apps and runners built on all of it
)


def _load_triton_before_tensorflow() -> None:
    """Import Triton (PyTorch's GPU compiler) now, before anything can import TensorFlow.

    Both bundle their own LLVM. When TensorFlow is loaded first, the later
    import of Triton (torchvision.ops and facenet-pytorch pull it in) crashes
    the Python process with a segmentation fault; in the other order both work.
    Importing it takes a fraction of a second, and only the CUDA builds of torch have it.
    """
    try:
        import triton  # noqa: F401
    except ImportError:
        pass


_load_triton_before_tensorflow()

"""Helper package for the deepfake video detection course.

The modules follow the course's pipeline, in the order the notebooks use them:

    config            paths, caches and run profiles (smoke / standard / full)
    environment       your machine, Colab or Kaggle Notebooks: what each one needs
    cache             the classroom cache of downloads (make prefetch, DEEPFAKE_CACHE)
    safe_io           guarded reading of the files a user supplies, all-or-nothing writes
    reproducibility   seeds
    gpu               device choice, a GPU memory cap, peak-memory reports
    results           saving figures and recording measured numbers
    plots             the figures notebooks draw (tables, curves, heat maps, Grad-CAM panels)
    data_sources      Kaggle DFDC, your own folder, metadata checks, splits
    sample_data       the built-in synthetic face-swap sample
    video_frames      evenly spaced frame sampling
    faces             MTCNN face detection, crops and the crop manifest
    datasets_torch    PyTorch datasets over the crop manifest
    datasets_keras    Keras sequence loader over the crop manifest
    models_torch      InceptionResnetV1 classifier and checkpoints
    models_keras      ResNet50 + LSTM video model
    models_compare    custom CNN, MesoNet, DenseNet121
    training_torch    training loop for the PyTorch face classifiers
    evaluation        metrics and frame -> video aggregation
    explain           Grad-CAM and test-time augmentation
    inference         one prediction function shared by notebooks and the demo
    demo_app          the Gradio app

Import the module you need, e.g. ``from helpers import config``; nothing heavy
(torch, TensorFlow) is imported by importing the package itself.
"""
__version__ = "0.1.0"


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

"""The code a notebook shows is the code the helpers run (d2l's way: one source of truth).

A notebook cell that defines a model, a training step or a Grad-CAM
computation for the student to read carries a cell tag
``same-as:helpers.<module>.<name>``; the cell must define ``<name>`` at its top
level, and that definition must be the helper's, statement for statement
(compared as syntax trees, so comments, blank lines and docstrings may differ,
code may not). The notebook then uses its own definition, and the demo and the
tests use the helper's: they cannot drift apart without this test failing.
"""
from __future__ import annotations

import ast
import importlib
import inspect
import json
import textwrap

import pytest

from helpers import course

TAG = "same-as:"
# Which definitions each notebook must show (and keep equal to the helpers').
REQUIRED: dict[str, set[str]] = {
    "05_model_comparison": {"helpers.models_compare.CustomCNN", "helpers.models_compare.Meso4"},
    "06_tta_gradcam": {"helpers.explain.gradcam_by_hand"},
}
REQUIRED["03_keras_resnet_lstm"] = {f"helpers.models_keras.{name}" for name in (
    "build_sequence_head", "build_resnet_lstm", "compile_model", "training_callbacks", "fit")}
REQUIRED["04_inception_resnet"] = {"helpers.models_torch.build_inception_classifier",
                                   "helpers.training_torch.train_one_epoch"}
REQUIRED["09_generalisation"] = {"helpers.sbi.self_blend"}


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant) \
                    and isinstance(first.value.value, str):
                node.body = node.body[1:] or [ast.Pass()]
    return tree


def normalised(source: str) -> str:
    """The syntax tree of ``source`` without docstrings, as text."""
    return ast.dump(_strip_docstrings(ast.parse(textwrap.dedent(source))), include_attributes=False)


def top_level_definition(cell_source: str, name: str) -> str | None:
    """Source of the top-level ``def``/``class`` called ``name`` in a cell, or None."""
    lines = cell_source.splitlines()
    tree = ast.parse(cell_source)
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            return "\n".join(lines[start - 1:node.end_lineno])
    return None


def helper_source(qualified: str) -> str:
    module_name, _, name = qualified.rpartition(".")
    module = importlib.import_module(module_name)
    return inspect.getsource(getattr(module, name))


def tagged_cells() -> list[tuple[str, int, str, str]]:
    """(notebook, cell index, qualified name, cell source) for every ``same-as:`` tag of the course."""
    found = []
    for notebook in course.course_notebooks():
        cells = json.loads(notebook.read_text())["cells"]
        for index, cell in enumerate(cells):
            for tag in cell.get("metadata", {}).get("tags", []):
                if tag.startswith(TAG):
                    found.append((notebook.stem, index, tag[len(TAG):], "".join(cell["source"])))
    return found


CASES = tagged_cells()


@pytest.mark.parametrize("notebook, index, qualified, source", CASES,
                         ids=[f"{nb}[{i}]:{q.rsplit('.', 1)[-1]}" for nb, i, q, _ in CASES])
def test_notebook_definition_equals_the_helpers(notebook, index, qualified, source):
    assert qualified.startswith("helpers."), f"{notebook} cell {index}: tag must name a helpers object"
    name = qualified.rsplit(".", 1)[-1]
    shown = top_level_definition(source, name)
    assert shown is not None, f"{notebook} cell {index} is tagged {TAG}{qualified} but defines no {name}"
    assert normalised(shown) == normalised(helper_source(qualified)), (
        f"{notebook} cell {index}: {name} differs from {qualified}; change both, or neither")


@pytest.mark.parametrize("notebook", sorted(REQUIRED))
def test_notebook_shows_the_definitions_it_teaches(notebook):
    shown = {q for nb, _, q, _ in CASES if nb == notebook}
    missing = REQUIRED[notebook] - shown
    assert not missing, f"{notebook} must show (and tag) {sorted(missing)}"


def test_the_comparison_catches_a_changed_line():
    helper = "def step(x):\n    \"\"\"Doc.\"\"\"\n    return x + 1\n"
    assert normalised(helper) == normalised("def step(x):\n    # a comment\n    return x + 1\n")
    assert normalised(helper) != normalised("def step(x):\n    return x + 2\n")
    cell = "import torch\n\n@decorator\nclass Net:\n    pass\n\nprint(1)\n"
    assert top_level_definition(cell, "Net") == "@decorator\nclass Net:\n    pass"
    assert top_level_definition(cell, "Other") is None


# ---------------------------------------------------------------------------------------------
# Behaviour: the notebook's definition, executed, does what the helper's does.
# ---------------------------------------------------------------------------------------------

def notebook_definition(notebook: str, qualified: str):
    """Execute a tagged cell's imports and its definition of ``name`` in a fresh namespace; return the object.

    Only the cell's ``import`` statements and the definition itself run (not the
    lines that use it), so this needs no data and no earlier cell.
    """
    name = qualified.rsplit(".", 1)[-1]
    sources = [source for nb, _, q, source in CASES if nb == notebook and q == qualified]
    assert sources, f"{notebook} has no cell tagged {TAG}{qualified}"
    tree = ast.parse(sources[0])
    keep = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))
            or (isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == name)]
    namespace: dict = {}
    exec(compile(ast.Module(body=keep, type_ignores=[]), f"<{notebook}:{name}>", "exec"), namespace)
    return namespace[name]


@pytest.mark.parametrize("name, image_size", [("CustomCNN", 64), ("Meso4", 64), ("Meso4", 256)])
def test_notebook_05_models_match_the_helpers(name, image_size):
    import torch

    from helpers import models_compare, models_torch

    shown = notebook_definition("05_model_comparison", f"helpers.models_compare.{name}")
    options = {"image_size": image_size} if name == "Meso4" else {}
    torch.manual_seed(0)
    mine = shown(**options).eval()
    torch.manual_seed(0)
    theirs = getattr(models_compare, name)(**options).eval()
    assert models_torch.count_parameters(mine)["trainable"] == models_torch.count_parameters(theirs)["trainable"]
    if (name, image_size) == ("Meso4", 256):
        assert models_torch.count_parameters(mine)["trainable"] == 27_977  # the MesoNet paper's count (arXiv:1809.00888)
    # same seed, same initial weights; and the helper's class reads the notebook's checkpoint as is
    assert all(torch.equal(a, b) for a, b in zip(mine.state_dict().values(), theirs.state_dict().values()))
    theirs.load_state_dict(mine.state_dict())
    x = torch.rand(3, 3, image_size, image_size)
    with torch.no_grad():
        assert torch.equal(mine(x), theirs(x))


def test_notebook_06_gradcam_matches_the_helper_and_the_library():
    import numpy as np
    import torch

    from helpers import explain, models_compare

    by_hand = notebook_definition("06_tta_gradcam", "helpers.explain.gradcam_by_hand")
    torch.manual_seed(0)
    model = models_compare.Meso4(image_size=64).eval()
    face = torch.rand(3, 64, 64)
    layer = explain.default_target_layer(model)
    mine = by_hand(model, face, layer)
    assert mine.shape == (64, 64) and mine.std() > 0.01
    np.testing.assert_array_equal(mine, explain.gradcam_by_hand(model, face, layer))
    library = explain.gradcam_torch(model, face, target_layer=layer)[0]
    assert float(np.abs(mine - library).max()) < 1e-4


# --------------------------------------------------------------------------- behaviour, not only text
def notebook_definitions(notebook: str) -> dict:
    """Run the tagged cells of ``notebook`` (in notebook order) in a fresh namespace and return it.

    The tagged cells hold only imports and definitions, so this runs no training; what they
    define can then be compared with the helpers by what it does.
    """
    namespace: dict = {"__name__": f"notebook_{notebook}"}
    for name, _, _, source in CASES:
        if name == notebook:
            exec(compile(source, f"<{notebook} tagged cell>", "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def keras_definitions():
    pytest.importorskip("keras")
    return notebook_definitions("03_keras_resnet_lstm")


def _keras_pair(build, seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    return build()


def test_notebook_03_head_builds_the_helpers_model(keras_definitions):
    import keras
    import numpy as np

    from helpers import models_keras

    rng = np.random.default_rng(0)
    stats = (rng.normal(2.0, 0.5, 16).astype("float32"), rng.uniform(0.1, 1.0, 16).astype("float32"))
    kwargs = dict(feature_dim=16, lstm_units=8, dense_units=6, feature_stats=stats)
    shown = _keras_pair(lambda: keras_definitions["build_sequence_head"](**kwargs))
    helper = _keras_pair(lambda: models_keras.build_sequence_head(**kwargs))
    assert [type(layer).__name__ for layer in shown.layers] == [type(layer).__name__ for layer in helper.layers]
    assert models_keras.count_parameters(shown) == models_keras.count_parameters(helper)
    # the same seed gives the same initial weights; outputs agree for the same weights and input
    assert all(np.array_equal(a, b) for a, b in zip(shown.get_weights(), helper.get_weights()))
    x = rng.normal(2.0, 0.5, (3, 5, 16)).astype("float32")
    assert np.allclose(models_keras.predict_batch(shown, x), models_keras.predict_batch(helper, x), atol=1e-6)


def test_notebook_03_end_to_end_model_wires_like_the_helpers(keras_definitions):
    import numpy as np

    from helpers import models_keras

    encoder = _keras_pair(lambda: models_keras.build_frame_encoder(32, pretrained=False))
    head = _keras_pair(lambda: models_keras.build_sequence_head(lstm_units=4, dense_units=4))
    shown = keras_definitions["build_resnet_lstm"](2, 32, encoder=encoder, head=head)
    helper = models_keras.build_resnet_lstm(2, 32, encoder=encoder, head=head)
    assert [layer.name for layer in shown.layers] == [layer.name for layer in helper.layers]
    assert models_keras.count_parameters(shown) == models_keras.count_parameters(helper)
    frames = np.random.default_rng(1).random((2, 2, 32, 32, 3)).astype("float32")
    assert np.allclose(models_keras.predict_batch(shown, frames), models_keras.predict_batch(helper, frames),
                       atol=1e-6)


def test_notebook_03_compile_and_fit_train_like_the_helpers(keras_definitions, tmp_path):
    import numpy as np

    from helpers import datasets_keras, models_keras

    rng = np.random.default_rng(2)
    labels = np.array([0, 1] * 4)
    features = (rng.normal(size=(8, 3, 12)) + labels[:, None, None]).astype("float32")
    runs = {}
    for who, compile_model, fit in (("notebook", keras_definitions["compile_model"], keras_definitions["fit"]),
                                    ("helper", models_keras.compile_model, models_keras.fit)):
        head = _keras_pair(lambda: models_keras.build_sequence_head(12, lstm_units=4, dense_units=4))
        compile_model(head, 1e-2)
        train = datasets_keras.FeatureSequenceDataset(features, labels, batch_size=4, shuffle=True, seed=0)
        val = datasets_keras.FeatureSequenceDataset(features[:4], labels[:4], batch_size=4)
        _keras_pair(lambda: None, seed=1)  # the same seed for dropout in both runs
        runs[who] = fit(head, train, val, epochs=3, checkpoint_path=tmp_path / f"{who}.weights.h5",
                        patience=2, verbose=0, clean_data=val)
        runs[who]["weights"] = head.get_weights()
    shown, helper = runs["notebook"], runs["helper"]
    assert shown["epochs_run"] == helper["epochs_run"] and shown["best_epoch"] == helper["best_epoch"]
    for key in ("loss", "val_loss", "accuracy", "val_auc"):
        assert np.allclose(shown["history"][key], helper["history"][key], atol=1e-5), key
    assert np.allclose([shown["clean_loss_before"], shown["clean_loss_after"]],
                       [helper["clean_loss_before"], helper["clean_loss_after"]], atol=1e-6)
    assert all(np.allclose(a, b, atol=1e-5) for a, b in zip(shown["weights"], helper["weights"]))


@pytest.fixture(scope="module")
def torch_definitions():
    return notebook_definitions("04_inception_resnet")


def test_notebook_04_classifier_is_the_helpers(torch_definitions):
    import torch

    from helpers import models_torch

    torch.manual_seed(0)
    shown = torch_definitions["build_inception_classifier"](pretrained=False, freeze="early")
    torch.manual_seed(0)
    helper = models_torch.build_inception_classifier(pretrained=False, freeze="early")
    assert models_torch.count_parameters(shown) == models_torch.count_parameters(helper)
    shown_state, helper_state = shown.state_dict(), helper.state_dict()
    assert list(shown_state) == list(helper_state)
    assert all(torch.equal(shown_state[k], helper_state[k]) for k in shown_state)
    faces = torch.rand(2, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(shown.eval()(faces), helper.eval()(faces), atol=1e-6)


def test_notebook_04_epoch_trains_like_the_helpers(torch_definitions):
    import torch

    from helpers import training_torch

    generator = torch.Generator().manual_seed(0)
    images = torch.rand(12, 3, 16, 16, generator=generator)
    targets = (images.mean(dim=(1, 2, 3)) > 0.5).float()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, targets), batch_size=4)
    runs = {}
    for who, epoch in (("notebook", torch_definitions["train_one_epoch"]), ("helper", training_torch.train_one_epoch)):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                    torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Dropout(0.3),
                                    torch.nn.Linear(4, 1))
        optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
        before = [p.detach().clone() for p in model.parameters()]
        runs[who] = (epoch(model, loader, optimizer, torch.nn.BCEWithLogitsLoss()), model.state_dict())
        assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters())), f"{who}: no weight moved"
    (shown_loss, shown_state), (helper_loss, helper_state) = runs["notebook"], runs["helper"]
    assert shown_loss == pytest.approx(helper_loss, abs=1e-7)
    assert all(torch.allclose(shown_state[k], helper_state[k], atol=1e-7) for k in shown_state)

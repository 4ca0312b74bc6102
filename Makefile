# Two commands do everything (each creates .venv and installs the pinned packages first):
#   make course   run every notebook on the built-in sample, regenerate figures/ and results/
#   make test     unit tests + every notebook in its smoke profile + the browser test of the demo
# More:  make demo (Gradio app)   make benchmark (face extraction speed)   make gpu-test (4 GiB GPU check)

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= standard
SOURCE ?= sample
PRETRAINED ?= False

.PHONY: course test demo benchmark gpu-test browser env clean-runs

$(VENV)/.installed: requirements.txt requirements-lock.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt -c requirements-lock.txt
	$(PY) -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
	touch $@

env: $(VENV)/.installed

course: $(VENV)/.installed
	$(PY) tools/run_course.py --profile $(PROFILE) --source $(SOURCE) --pretrained $(PRETRAINED)

browser:
	bash tools/install_browser.sh

test: $(VENV)/.installed browser
	$(PY) -m pytest

demo: $(VENV)/.installed
	$(PY) -m helpers.demo_app $(if $(CHECKPOINT),--checkpoint $(CHECKPOINT),)

benchmark: $(VENV)/.installed
	$(PY) tools/benchmark_faces.py

gpu-test: $(VENV)/.installed
	$(PY) -m pytest -m gpu tests/test_gpu_full_profile.py

clean-runs:
	rm -rf runs results

# CPU estimate of each notebook's GPU memory at its full settings (docs/gpu_4gb.md); no GPU needed
.PHONY: memory-estimate
memory-estimate: $(VENV)/.installed
	$(PY) tools/memory_estimate.py

# training speed of the course's loop, plain vs channels-last memory format (CPU)
.PHONY: benchmark-training
benchmark-training: $(VENV)/.installed
	$(PY) tools/benchmark_training.py

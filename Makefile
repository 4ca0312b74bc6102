# Two commands do everything (each creates .venv and installs the pinned packages first):
#   make course   run every notebook on the built-in sample, regenerate figures/ and results/
#   make test     unit tests + every notebook in its smoke profile + the browser test of the demo
# More:  make demo (Gradio app)   make benchmark (face extraction speed)   make gpu-test (4 GiB GPU check)
#        make test-functional (the standard course against the committed reference run)
#
# Variables (all optional; `make course SOURCE=folder DATA_PATH=/path/to/videos` etc.):
#   course     PROFILE (smoke | standard | full), SOURCE (sample | kaggle | folder), DATA_PATH (your
#              folder, with SOURCE=folder), DIFFICULTY (the built-in sample's), PRETRAINED (True | False),
#              DEVICE (auto | cpu | cuda), ONLY (notebook numbers, e.g. ONLY="01 02")
#   demo       CHECKPOINT (a .pth file)
#   benchmark  VIDEOS (a folder of your own videos, with metadata.json or real/ and fake/)

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= standard
SOURCE ?= sample
PRETRAINED ?= False
DATA_PATH ?=
DIFFICULTY ?=
DEVICE ?=
ONLY ?=
CHECKPOINT ?=
VIDEOS ?=

# An option only when its variable is set; values are quoted for the shell, so paths with spaces work.
quoted = '$(subst ','\'',$(1))'
option = $(if $(strip $(2)),$(1) $(call quoted,$(2)))
COURSE_OPTIONS = --profile $(call quoted,$(PROFILE)) --source $(call quoted,$(SOURCE)) \
                 --pretrained $(call quoted,$(PRETRAINED)) $(call option,--data-path,$(DATA_PATH)) \
                 $(call option,--difficulty,$(DIFFICULTY)) $(call option,--device,$(DEVICE)) \
                 $(if $(strip $(ONLY)),--only $(ONLY))

.PHONY: course test test-functional demo benchmark gpu-test browser env clean-runs

$(VENV)/.installed: requirements.txt requirements-lock.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt -c requirements-lock.txt
	$(PY) -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
	touch $@

env: $(VENV)/.installed

course: $(VENV)/.installed
	$(PY) tools/run_course.py $(COURSE_OPTIONS)

browser:
	bash tools/install_browser.sh

test: $(VENV)/.installed browser
	$(PY) -m pytest

demo: $(VENV)/.installed
	$(PY) -m helpers.demo_app$(call option, --checkpoint,$(CHECKPOINT))

benchmark: $(VENV)/.installed
	$(PY) tools/benchmark_faces.py$(call option, --videos-dir,$(VIDEOS))

gpu-test: $(VENV)/.installed
	$(PY) -m pytest -m gpu tests/test_gpu_full_profile.py

# the whole course (standard profile) in a temporary folder, compared with tests/reference/standard.json
test-functional: $(VENV)/.installed
	$(PY) -m pytest -m functional -s tests/test_functional.py

clean-runs:
	rm -rf runs results

# The course book, a classroom cache, student copies (see README):
#   make book [PROFILE=smoke]   make prefetch CACHE=/shared/course-cache   make student
.PHONY: book prefetch student

book: $(VENV)/.installed
	$(PY) tools/build_book.py $(if $(filter command line environment,$(origin PROFILE)),--profile $(PROFILE),)

prefetch: $(VENV)/.installed
	$(PY) tools/prefetch.py$(call option, --cache,$(CACHE))

student: $(VENV)/.installed
	$(PY) tools/make_student.py

# Scale-out (notebook 08): face crops of a folder of videos on Ray (this machine, or the cluster in
# RAY_ADDRESS), then every video scored with a checkpoint into submission.csv (DFDC format).
#   make extract-cluster DATA_PATH=/videos [RAY_ADDRESS=head:6379] [WORKERS=4] [DEVICE=cpu] [PROFILE=full]
#   make score DATA_PATH=/videos [CHECKPOINT=model.pth] [RULE=mean|confident] [OUT=/folder]
.PHONY: extract-cluster score
RAY_OPTIONS = --profile $(call quoted,$(PROFILE)) $(call option,--address,$(RAY_ADDRESS)) \
              $(call option,--workers,$(WORKERS)) $(call option,--device,$(DEVICE))
extract-cluster: $(VENV)/.installed
	@test -n $(call quoted,$(DATA_PATH)) || { echo "Set DATA_PATH to a folder of videos: make extract-cluster DATA_PATH=/path"; exit 2; }
	$(PY) -m helpers.distributed extract $(call quoted,$(DATA_PATH)) $(RAY_OPTIONS)
score: $(VENV)/.installed
	@test -n $(call quoted,$(DATA_PATH)) || { echo "Set DATA_PATH to a folder of videos: make score DATA_PATH=/path CHECKPOINT=model.pth"; exit 2; }
	$(PY) -m helpers.distributed score $(call quoted,$(DATA_PATH)) $(RAY_OPTIONS) $(call option,--checkpoint,$(CHECKPOINT)) \
		$(call option,--rule,$(RULE)) $(call option,--out,$(OUT))

# CPU estimate of each notebook's GPU memory at its full settings (docs/gpu_4gb.md); no GPU needed
.PHONY: memory-estimate
memory-estimate: $(VENV)/.installed
	$(PY) tools/memory_estimate.py

# training speed of the course's loop, plain vs channels-last memory format (CPU)
.PHONY: benchmark-training
benchmark-training: $(VENV)/.installed
	$(PY) tools/benchmark_training.py

# vitalens: the two commands a person needs are `make serve` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP_ENV := PIP_FIND_LINKS= PIP_DISABLE_PIP_VERSION_CHECK=1
export HF_HUB_OFFLINE := 1

.PHONY: serve test test-setup test-all lint format bench install models clean

$(VENV)/.installed: pyproject.toml requirements/notes-nodeps.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP_ENV) $(PY) -m pip install -q --upgrade pip
	$(PIP_ENV) $(PY) -m pip install -q -e ".[all,dev]"
	$(PIP_ENV) $(PY) -m pip install -q --no-deps -r requirements/notes-nodeps.txt
	touch $@

install: $(VENV)/.installed

serve: install
	$(VENV)/bin/vitalens serve --host 127.0.0.1 --port 8000

test: install test-setup
	bash scripts/test.sh

# What the tests need beside Python: PostgreSQL and Redis running, Debian's Chromium and axe-core for the browser
# tests. Each step is skipped when already done; without root the browser tests skip (and fail under CI=true).
test-setup:
	bash scripts/services.sh
	bash scripts/e2e_setup.sh || echo "warning: could not install Chromium/axe-core; browser tests will skip" >&2

test-all: install
	$(PY) -m pytest -m "" -q

lint: install
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy src/vitalens/domain.py src/vitalens/slots.py src/vitalens/_registry.py src/vitalens/risk src/vitalens/artifacts src/vitalens/store src/vitalens/service

format: install
	$(VENV)/bin/ruff format src tests bench

bench: install
	bash scripts/bench.sh

clean:
	rm -rf .pytest_cache .ruff_cache build dist

# Bundled models: each made by one command from the public data in ../shared/data (see each card.json).
SHARED ?= ../shared/data
.PHONY: model-fundus-odir model-fundus-odir-finetuned model-fundus-odir-calibrate model-ecg-ptbxl model-fundus-vessels model-quality-gates model-fundus-dr model-oct-kermany4
# fundus.odir, the bundled model: frozen ImageNet Lite0 trunk + 5 fold heads on all 304 patients, per-label Platt
# and thresholds on the out-of-fold predictions (minutes on a CPU). Chosen over the fine-tuned net because its
# probabilities are calibrated: on the same 50 held-out patients ECE 0.035 (what a calibrated model shows at that n)
# against 0.062 (miscalibrated, p = 0.006), macro-AUROC -0.022 [-0.076, 0.036] (bench/results/fundus_odir.json).
# The ONNX graph (three inputs: both eyes + age) is not bundled (25 MB limit); `vitalens export models/fundus-odir
# --onnx` writes it (verified), and the analyzer then uses it.
model-fundus-odir: install
	$(VENV)/bin/vitalens train fundus.odir --recipe recipes/fundus.odir.frozen.yaml --data $(SHARED)/fundus/odir \
		--out runs/fundus-odir-frozen
	bash scripts/bundle_model.sh runs/fundus-odir-frozen models/fundus-odir

# The fine-tuned alternative (0.7/0.15/0.15 split, 12 epochs; per-label Platt refitted on the 49 validation patients).
model-fundus-odir-finetuned: install
	$(VENV)/bin/vitalens train fundus.odir --data $(SHARED)/fundus/odir --out runs/fundus-odir
	bash scripts/bundle_model.sh runs/fundus-odir models/fundus-odir
	$(MAKE) model-fundus-odir-calibrate

# The calibration step alone, on a fine-tuned artifact's weights (not retrained): card, report and bench rewritten.
model-fundus-odir-calibrate: install
	$(VENV)/bin/vitalens calibrate models/fundus-odir --data $(SHARED)/fundus/odir \
		--json bench/results/fundus_odir_calibration.json --plot bench/results/fundus_odir_calibration_reliability.png

model-ecg-ptbxl: install
	$(VENV)/bin/vitalens train ecg.ptbxl --data $(SHARED)/ecg/ptb-xl --out runs/ecg-ptbxl
	bash scripts/bundle_model.sh runs/ecg-ptbxl models/ecg-ptbxl
	$(VENV)/bin/vitalens export models/ecg-ptbxl --onnx

# DRIVE vessel U-Net (the recipe's fixed epoch count; ~1-2 h on a shared 2-core CPU, minutes on a GPU).
model-fundus-vessels: install
	$(VENV)/bin/vitalens train fundus.vessels --data $(SHARED)/fundus/DRIVE --out runs/fundus-vessels
	bash scripts/bundle_model.sh runs/fundus-vessels models/fundus-vessels
	$(VENV)/bin/vitalens export models/fundus-vessels --onnx

# Input quality gates (models/quality-{fundus,oct,cxr}): fitted and calibrated on held-out real images.
model-quality-gates: install
	$(PY) -m vitalens.quality.calibrate --shared $(SHARED) --out models

# DR grade on the 150 real APTOS images (demonstration: 150 images). The ONNX graph is not bundled (weights + graph
# would pass the 25 MB limit): `vitalens export models/fundus-dr --onnx` writes it, and the analyzer then uses it.
# EfficientNet-Lite1 since bench/aptos.py measured it above Lite0; retina-fusion sits on this encoder: remake both.
model-fundus-dr: install
	$(VENV)/bin/vitalens train fundus.dr --data $(SHARED)/fundus/aptos2019 --out runs/fundus-dr
	bash scripts/bundle_model.sh runs/fundus-dr models/fundus-dr

# OCT 4 classes on the 218 real Kermany scans of 85 patients (demonstration); ONNX as for fundus-dr.
model-oct-kermany4: install
	$(VENV)/bin/vitalens train oct.kermany4 --data $(SHARED)/oct --out runs/oct-kermany4
	bash scripts/bundle_model.sh runs/oct-kermany4 models/oct-kermany4

# cxr.anomaly: fitted on the 300 training normals of the COVID-19 Radiography sample (CPU minutes once the
# frozen encoder's features are cached in runs/cxr-feature-cache, which bench/cxr_anomaly.py shares).
.PHONY: model-cxr-anomaly
model-cxr-anomaly: install
	$(VENV)/bin/vitalens train cxr.anomaly --data $(SHARED)/cxr/covid19_radiography_sample --out runs/cxr-anomaly \
		--set task.feature_cache=runs/cxr-feature-cache
	bash scripts/bundle_model.sh runs/cxr-anomaly models/cxr-anomaly
	$(VENV)/bin/vitalens export models/cxr-anomaly --onnx

# retina.fusion: a head on the frozen bundled fundus.dr + oct.kermany4 encoders, trained on virtual pairs of the real
# APTOS and Kermany images (make model-fundus-dr model-oct-kermany4 first).
.PHONY: model-retina-fusion
model-retina-fusion: install
	$(VENV)/bin/vitalens train retina.fusion --data $(SHARED) --out runs/retina-fusion \
		--set task.fundus_data=$(SHARED)/fundus/aptos2019 --set task.oct_data=$(SHARED)/oct
	bash scripts/bundle_model.sh runs/retina-fusion models/retina-fusion
	$(VENV)/bin/vitalens export models/retina-fusion --onnx

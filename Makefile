# Two commands set everything up on a fresh Debian/Ubuntu machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PG_VERSION = $$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -n 1)
VENDOR_STAMP := asset_map/web/static/vendor/.installed.json
BENCH_SCALE ?= small

.PHONY: help install system-deps run serve test test-fast bench lint clean

help:
	@echo "make run    install, start the database, migrate, load data, serve on http://127.0.0.1:5000"
	@echo "make test   install, start a throwaway PostGIS, run every test"
	@echo "make bench  run the benchmarks (BENCH_SCALE=small|county|england) and write BENCHMARKS.md"

# PostgreSQL with PostGIS, Chromium (browser tests), GDAL's ogr2ogr and wrk (benchmarks references); Pango and the
# DejaVu fonts for WeasyPrint's briefing PDFs, and poppler's pdftoppm (tests look at the PDFs as images).
system-deps:
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1 || missing="$$missing postgis"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v ogr2ogr >/dev/null 2>&1 || missing="$$missing gdal-bin"; \
	command -v wrk >/dev/null 2>&1 || missing="$$missing wrk"; \
	ls /usr/lib/*/libpangoft2-1.0.so.0 >/dev/null 2>&1 || missing="$$missing libpango-1.0-0 libpangoft2-1.0-0"; \
	ls /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf >/dev/null 2>&1 || missing="$$missing fonts-dejavu-core"; \
	command -v pdftoppm >/dev/null 2>&1 || missing="$$missing poppler-utils"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
	  echo "Missing system packages:$$missing."; \
	  echo "Install PostgreSQL 15+ with PostGIS 3, Chromium, GDAL (ogr2ogr), wrk, Pango, DejaVu fonts and poppler, e.g. on Fedora:"; \
	  echo "  sudo dnf install postgresql-server postgis chromium gdal wrk pango dejavu-sans-fonts poppler-utils"; \
	  echo "or on macOS: brew install postgresql@15 postgis chromium gdal wrk pango poppler"; \
	  exit 1; \
	fi; \
	echo "installing system packages:$$missing"; \
	$(SUDO) apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
	  postgresql chromium gdal-bin wrk libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core poppler-utils \
	  >/dev/null && \
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
	  postgresql-$(PG_VERSION)-postgis-3 >/dev/null

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/activate setup.cfg pyproject.toml
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

# Leaflet, folium's plugins, Font Awesome and govuk-frontend from the npm registry, served by the app itself.
$(VENDOR_STAMP): $(VENV)/.installed asset_map/tools/vendor.py
	$(PY) -m asset_map.tools.vendor

install: system-deps $(VENV)/.installed $(VENDOR_STAMP)

run: install
	$(BIN)/asset-map bootstrap
	$(BIN)/asset-map serve

serve: install
	$(BIN)/asset-map serve

test: install
	$(BIN)/asset-map layers check
	$(PY) -m pytest -q -p no:cacheprovider --durations=15

test-fast: install
	$(PY) -m pytest -q -x -m "not slow and not browser"

bench: install
	$(PY) -m asset_map.tools.bench --scale $(BENCH_SCALE)

lint: install
	$(PY) -m pyflakes asset_map tests 2>/dev/null || true

clean:
	-$(BIN)/asset-map db stop 2>/dev/null
	rm -rf $(VENV) build *.egg-info asset_map/web/static/vendor tests/artifacts

# Two entry points on a fresh machine: `make demo` and `make test`. Each creates .venv as needed.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Debian font families for training (spotrt/data/fonts.py DEBIAN_FONT_PACKAGES; some are held out)
FONT_PKGS := fonts-dejavu-core fonts-liberation fonts-freefont-ttf fonts-crosextra-carlito fonts-open-sans \
	fonts-cantarell fonts-firacode fonts-inconsolata fonts-oxygen fonts-roboto-slab fonts-league-spartan \
	fonts-comfortaa fonts-ebgaramond fonts-linuxlibertine fonts-quicksand fonts-hack fonts-b612 \
	fonts-jetbrains-mono fonts-urw-base35

.PHONY: demo test venv fonts clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[train,onnx,cuda,test]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/spotrt demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

fonts:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(FONT_PKGS) >/dev/null; \
	else echo "make fonts: needs root and apt-get; install these Debian packages: $(FONT_PKGS)"; exit 1; fi

clean:
	rm -rf $(VENV) build *.egg-info

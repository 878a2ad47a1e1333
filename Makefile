# Two entry points on a fresh machine: `make demo` and `make test`. Each creates .venv as needed.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Debian font families for training (spotrt/data/fonts.py DEBIAN_FONT_PACKAGES; some are held out)
FONT_PKGS := fonts-dejavu-core fonts-liberation fonts-freefont-ttf fonts-crosextra-carlito fonts-open-sans \
	fonts-cantarell fonts-firacode fonts-inconsolata fonts-oxygen fonts-roboto-slab fonts-league-spartan \
	fonts-comfortaa fonts-ebgaramond fonts-linuxlibertine fonts-quicksand fonts-hack fonts-b612 \
	fonts-jetbrains-mono fonts-urw-base35 fonts-bebas-neue fonts-routed-gothic fonts-allerta \
	fonts-national-park fonts-roadgeek fonts-opendin fonts-yanone-kaffeesatz fonts-apropal \
	fonts-tiresias fonts-cabin fonts-clear-sans fonts-inter fonts-karla fonts-junction fonts-dosis \
	fonts-play fonts-sora fonts-tuffy fonts-beteckna fonts-millimetre fonts-radisnoir fonts-eurofurence \
	fonts-sil-andika fonts-go fonts-croscore fonts-adf-gillius fonts-adf-switzera fonts-adf-universalis \
	fonts-adf-verana fonts-averia-sans-gwf fonts-averia-serif-gwf fonts-paratype fonts-roboto-unhinted \
	fonts-adf-accanthis fonts-adf-baskervald fonts-adf-berenis fonts-adf-libris fonts-adf-romande \
	fonts-adf-tribun fonts-cardo fonts-century-catalogue fonts-fanwood fonts-goudybookletter \
	fonts-lindenhill fonts-oldstandard fonts-quattrocento fonts-sil-gentium fonts-vollkorn fonts-arapey \
	fonts-courier-prime fonts-anonymous-pro fonts-mononoki fonts-fantasque-sans fonts-agave \
	fonts-monofur fonts-osifont fonts-league-mono fonts-engadget fonts-okolaks fonts-summersby \
	fonts-dejavu-extra fonts-mplus fonts-karmilla fonts-prociono fonts-opendyslexic fonts-jura \
	fonts-comic-neue fonts-hermit fonts-3270 fonts-gfs-neohellenic fonts-solide-mirage fonts-manrope

# GStreamer for camera sources (spotrt/runtime/gst.py, its tests' RTSP server): Debian/Ubuntu packages.
GST_PKGS := python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 gir1.2-gst-rtsp-server-1.0 \
	gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad \
	gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-rtsp

.PHONY: demo test venv serve-venv fonts gst-packages system-gi shipped-onnx clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[train,onnx,cuda,test,triton-client]'
	touch $(STAMP)

venv: $(STAMP)

# `spotrt serve` (PyTriton and its tritonserver) in its own environment: PyTriton pins numpy < 2,
# which the main environment must not get. No torch there: the runtime does not need it.
SERVE_VENV := .venv-serve
SERVE_STAMP := $(SERVE_VENV)/.installed

$(SERVE_STAMP): pyproject.toml
	$(PY) -m venv $(SERVE_VENV)
	$(SERVE_VENV)/bin/python -m pip install -q --upgrade pip
	$(SERVE_VENV)/bin/python -m pip install -q -e '.[runtime,serve]'
	touch $(SERVE_STAMP)

serve-venv: $(SERVE_STAMP)

# The venv sees the system's PyGObject (gi) and nothing else of the system (tools/link_system_gi.py).
system-gi: $(STAMP)
	@$(BIN)/python tools/link_system_gi.py

demo: $(STAMP) system-gi
	$(BIN)/spotrt demo

test: $(STAMP) system-gi
	$(BIN)/python -m pytest -q --durations=10

# The shipped model's exported graphs (plugin graph + read graph, with the weights' sha256 in their
# metadata), which a runtime install without torch reads with. Run after every change of the shipped
# weights: tests/test_shipped_onnx.py fails until then. (spotrt.formats.shipped.EXPORT_COMMAND)
shipped-onnx: $(STAMP)
	$(BIN)/spotrt export --model spotrt/weights/spotrt_light.safetensors --out spotrt/weights/spotrt_light.onnx --graphs plugin,read

fonts:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(FONT_PKGS) >/dev/null; \
	else echo "make fonts: needs root and apt-get; install these Debian packages: $(FONT_PKGS)"; exit 1; fi

gst-packages:
	@if ! command -v dpkg >/dev/null; then echo "make gst-packages: not a Debian system; install GStreamer 1.x, PyGObject and gst-rtsp-server"; exit 1; fi; \
	missing=$$(for p in $(GST_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -z "$$missing" ]; then echo "gst-packages: all installed"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing >/dev/null; \
	else echo "make gst-packages: needs root and apt-get; install these Debian packages:" $$missing; exit 1; fi

clean:
	rm -rf $(VENV) $(SERVE_VENV) build *.egg-info

"""Discovery of TrueType/OpenType fonts for rendering synthetic text."""
from __future__ import annotations

import functools
import importlib
import os
import string

FONT_PACKAGES = (
    "font_roboto",
    "font_source_sans_pro",
    "font_caladea",
    "font_fjallaone",
    "font_lato",
    "font_manrope",
    "font_hanken_grotesk",
)
SYSTEM_FONT_DIRS = ("/usr/share/fonts/truetype", "/usr/share/fonts/opentype")
# Debian font packages that `make fonts` installs for training (many families; some held out).
DEBIAN_FONT_PACKAGES = (
    "fonts-dejavu-core", "fonts-liberation", "fonts-freefont-ttf", "fonts-crosextra-carlito", "fonts-open-sans",
    "fonts-cantarell", "fonts-firacode", "fonts-inconsolata", "fonts-oxygen", "fonts-roboto-slab",
    "fonts-league-spartan", "fonts-comfortaa", "fonts-ebgaramond", "fonts-linuxlibertine", "fonts-quicksand",
    "fonts-hack", "fonts-b612", "fonts-jetbrains-mono", "fonts-urw-base35",
    # condensed, signage and display faces (signs, posters, plates), more serif, sans and typewriter
    # families: faces unlike any in training read worse (model card, "Where reading is lost"; run c10)
    "fonts-bebas-neue", "fonts-routed-gothic", "fonts-allerta", "fonts-national-park", "fonts-roadgeek",
    "fonts-opendin", "fonts-yanone-kaffeesatz", "fonts-apropal", "fonts-tiresias", "fonts-cabin", "fonts-clear-sans",
    "fonts-inter", "fonts-karla", "fonts-junction", "fonts-dosis", "fonts-play", "fonts-sora", "fonts-tuffy",
    "fonts-beteckna", "fonts-millimetre", "fonts-radisnoir", "fonts-eurofurence", "fonts-sil-andika", "fonts-go",
    "fonts-croscore", "fonts-adf-gillius", "fonts-adf-switzera", "fonts-adf-universalis", "fonts-adf-verana",
    "fonts-averia-sans-gwf", "fonts-averia-serif-gwf", "fonts-paratype", "fonts-roboto-unhinted",
    "fonts-adf-accanthis", "fonts-adf-baskervald", "fonts-adf-berenis", "fonts-adf-libris", "fonts-adf-romande",
    "fonts-adf-tribun", "fonts-cardo", "fonts-century-catalogue", "fonts-fanwood", "fonts-goudybookletter",
    "fonts-lindenhill", "fonts-oldstandard", "fonts-quattrocento", "fonts-sil-gentium", "fonts-vollkorn",
    "fonts-arapey", "fonts-courier-prime", "fonts-anonymous-pro", "fonts-mononoki", "fonts-fantasque-sans",
    "fonts-agave", "fonts-monofur", "fonts-osifont", "fonts-league-mono", "fonts-engadget", "fonts-okolaks",
    "fonts-summersby", "fonts-dejavu-extra", "fonts-mplus", "fonts-karmilla", "fonts-prociono",
    "fonts-opendyslexic", "fonts-jura", "fonts-comic-neue", "fonts-hermit", "fonts-3270",
    "fonts-gfs-neohellenic", "fonts-solide-mirage", "fonts-manrope",
)
# Faces of one family that training samples at most (`balanced`): a family shipped in 30 weights
# takes the share of one family, not of 30.
FACES_PER_FAMILY = 4
# Families never used in training: the held-out synthetic crop set renders in these only.
HELDOUT_FAMILIES = ("Carlito", "LiberationSerif", "Comfortaa", "B612", "B612Mono", "URWBookman", "Oxygen",
                    "OxygenMono")
# The fonts the held-out synthetic scenes of every earlier model were drawn with (pip packages and
# DejaVu): the "legacy" set keeps those evaluation scenes the same whatever else is installed.
LEGACY_FAMILY_PREFIXES = ("Roboto-", "Roboto", "SourceSansPro", "Caladea", "FjallaOne", "Lato", "Manrope",
                          "HankenGrotesk", "DejaVu")
SPLITS = ("legacy", "train", "heldout", "all")
_STYLE_WORDS = ("Regular", "Bold", "Italic", "Oblique", "Light", "Medium", "Semibold", "SemiBold", "Black",
                "ExtraBold", "Heavy", "Book", "Demi", "It")
REQUIRED_GLYPHS = string.ascii_letters + string.digits

# Names of faces that are unsuitable: script/handwriting, symbol/math, and hairline weights that
# vanish at small sizes. Variable fonts duplicate their static instances.
_SKIP_WORDS = (
    "script", "hand", "brush", "cursive", "comic", "dancing", "pacifico", "caveat", "marker",
    "symbol", "math", "emoji", "dingbat", "wingding", "icon", "thin", "hairline", "extralight",
    "ultralight", "variablefont", "[wght]", "d050000l", "z003", "standardsymbols",
    # letters that are not letter shapes: keyboard keys (Biolinum K), block and stencil display faces
    "biolinumk", "ferritecore", "f500", "staypuft",
)


def _package_font_dirs() -> list[str]:
    dirs = []
    for name in FONT_PACKAGES:
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        for base in list(getattr(mod, "__path__", [])) or [os.path.dirname(mod.__file__ or "")]:
            d = os.path.join(base, "files")
            if os.path.isdir(d):
                dirs.append(d)
    return dirs


def _candidates() -> list[str]:
    paths = []
    for d in _package_font_dirs() + [d for d in SYSTEM_FONT_DIRS if os.path.isdir(d)]:
        for dirpath, _, files in os.walk(d):
            for f in files:
                if f.lower().endswith((".ttf", ".otf")):
                    paths.append(os.path.realpath(os.path.join(dirpath, f)))
    return sorted(set(paths))


@functools.lru_cache(maxsize=None)
def has_glyphs(path: str, chars: str = REQUIRED_GLYPHS) -> bool:
    """True when the font at ``path`` loads and draws a distinct, non-empty glyph for each char."""
    try:
        from PIL import ImageFont

        font = ImageFont.truetype(path, 24)
        notdef = bytes(font.getmask("\U000f0000"))  # a private-use code point: the .notdef box
        for c in chars:
            m = font.getmask(c)
            if m.size[0] == 0 or m.size[1] == 0:
                return False
            b = bytes(m)
            if not any(b) or b == notdef:
                return False
        return True
    except Exception:
        return False


@functools.lru_cache(maxsize=1)
def _find_fonts() -> tuple[str, ...]:
    chosen: dict[str, str] = {}
    for p in _candidates():
        stem, ext = os.path.splitext(os.path.basename(p))
        low = stem.lower().replace("-", "").replace("_", "")
        if any(w in low for w in _SKIP_WORDS):
            continue
        # The same face shipped as .ttf and .otf: keep one (prefer .ttf).
        key = stem.lower()
        if key in chosen and chosen[key].lower().endswith(".ttf"):
            continue
        if not has_glyphs(p):
            continue
        chosen[key] = p
    # Ordered by face name, not path: a seed picks the same font wherever the venv or fonts live.
    return tuple(chosen[k] for k in sorted(chosen))


def family(path: str) -> str:
    """Font family of a file, from its name: 'LiberationSerif-BoldItalic.ttf' -> 'LiberationSerif',
    'FreeSansBold.ttf' -> 'FreeSans'."""
    stem = os.path.splitext(os.path.basename(path))[0]
    name = stem.replace("_", "-").split("-")[0]
    changed = True
    while changed:
        changed = False
        for w in _STYLE_WORDS:
            if name.endswith(w) and len(name) > len(w):
                name, changed = name[: -len(w)], True
    return name


def _is_legacy(path: str) -> bool:
    base = os.path.basename(path)
    dejavu_core = base.startswith("DejaVu") and "/truetype/dejavu/" in path.replace(os.sep, "/")
    return dejavu_core or (not base.startswith("DejaVu") and "/files/" in path.replace(os.sep, "/")
                           and base.startswith(LEGACY_FAMILY_PREFIXES))


def find_fonts(split: str = "legacy") -> list[str]:
    """Usable font files: the pip font packages' ``files/`` folders and /usr/share/fonts.

    Ordered by face name (independent of install location) and deduplicated; fonts missing any of
    a-zA-Z0-9, and script/handwriting/symbol or hairline faces, are skipped. `split`: "legacy" (the
    pip packages and DejaVu: the fonts of the held-out evaluation scenes), "train" (everything but
    the held-out families), "heldout" (only `HELDOUT_FAMILIES`, for validation and tests) or
    "all". Raises RuntimeError when none is found.
    """
    if split not in SPLITS:
        raise ValueError(f"font split: found {split!r}, expected one of {SPLITS}")
    fonts = list(_find_fonts())
    if split == "legacy":
        fonts = [f for f in fonts if _is_legacy(f)]
    elif split == "train":
        fonts = [f for f in fonts if family(f) not in HELDOUT_FAMILIES]
    elif split == "heldout":
        fonts = [f for f in fonts if family(f) in HELDOUT_FAMILIES]
    if not fonts:
        raise RuntimeError(
            f"no usable fonts found for the {split!r} split: install the font packages (pip install -e "
            "'.[train]', and `make fonts` for the Debian families)"
        )
    return fonts


def balanced(fonts: list[str], per_family: int = FACES_PER_FAMILY) -> list[str]:
    """At most `per_family` faces of each family (`family`), spread evenly over its faces in the
    given order (so a family's regular and bold weights both stay), the order otherwise kept."""
    if per_family < 1:
        raise ValueError(f"per_family: found {per_family}, expected at least 1")
    groups: dict[str, list[str]] = {}
    for f in fonts:
        groups.setdefault(family(f), []).append(f)
    keep = set()
    for faces in groups.values():
        n = len(faces)
        if n <= per_family:
            picks = range(n)
        elif per_family == 1:
            picks = [0]
        else:  # both ends and evenly between (distinct: n > per_family)
            picks = [round(i * (n - 1) / (per_family - 1)) for i in range(per_family)]
        keep.update(faces[i] for i in picks)
    return [f for f in fonts if f in keep]

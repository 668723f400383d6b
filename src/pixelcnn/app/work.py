"""What each tab of the app computes, without Gradio: the library's public functions, called as a page needs them.

Every function takes an ``AppModel`` (a loaded model and what is known of the
data it was trained on) and plain values (integers, file paths, arrays) and
returns pictures (PIL images), numbers and file paths; the drawing functions
are generators that yield a picture per finished row while the model draws.
Nothing here samples, scores, codes or draws on its own: ``model.sample`` /
``model.complete``, ``scores.anomaly_scores``, ``coding.compress`` /
``decompress``, ``analysis`` and ``viz`` do, and ``data.read_image`` reads
every image a person gives (a drawing is written to a PNG first).

Files are written only under the folder a caller passes (the app gives each
request its own, inside its temporary folder).
"""

from __future__ import annotations

import math
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import analysis, coding, data, identity, scores, viz
from ..data.folder import GREY_MODES
from ..evaluate import check_compatible

TABS = ("complete", "sample", "likelihood", "compress", "glyphs", "inside")
TAB_TITLES = {
    "complete": "Draw and complete",
    "sample": "Sample",
    "likelihood": "Likelihood",
    "compress": "Compress",
    "glyphs": "New glyphs of an unseen font",
    "inside": "Look inside",
}
MOST_LIKELY = "most likely"  # class choice: the class under which the given pixels are most likely
EACH_CLASS = "each class"  # sample choice: one image of every class per row
UNKNOWN_CLASS = "unknown (marginal)"  # likelihood choice: -log (1/K) sum_k p(x | k)
SCREEN_PIXELS = 168  # an image's longer side on the page (28 x 28 -> 6 screen pixels a pixel)
MAX_DRAWS = 16  # images one request may draw (a page, not a batch job)
MAX_COMPRESS_IMAGES = 64


def screen_scale(image_shape) -> int:
    return max(1, SCREEN_PIXELS // max(image_shape[1:]))


# ------------------------------------------------------------------------------------------ models
@dataclass
class AppModel:
    """A model the app offers: the loaded model, its name on the page, and the data it was trained on."""

    name: str
    model: object  # an AutoregressiveModel in eval mode
    data: str | None = None  # the data set it was trained on (None: unknown, a bare model folder)
    binarize: str | None = None
    data_root: str | None = None
    image_size: int | None = None
    identity: dict | None = None  # identity.json of a ``pixelcnn identity`` run
    summary: str = ""  # one line (a zoo card's summary, or the run folder)
    background: object = None  # a background model for the likelihood ratio (``--background``)
    reference_images: int = 500  # test images the likelihood percentile is measured against
    _cache: dict = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def num_classes(self) -> int | None:
        return getattr(self.model.config, "num_classes", None)

    @property
    def cond_dim(self) -> int | None:
        """Size of the vector the model draws from: its ``cond_dim``, or an auto-encoder's code (``bottleneck``)."""
        config = self.model.config
        return getattr(config, "cond_dim", None) or (
            getattr(config, "bottleneck", None) if hasattr(self.model, "encode") else None
        )

    def describe(self) -> str:
        model = self.model
        channels, height, width = model.image_shape
        what = (
            f"{model.name}, {channels}x{height}x{width} images with {model.levels} levels, "
            f"{sum(p.numel() for p in model.parameters()):,} parameters"
        )
        condition = (
            f", class-conditional ({self.num_classes} classes)"
            if self.num_classes
            else f", conditioned on a {self.cond_dim}-vector"
            if self.cond_dim
            else ", unconditional"
        )
        trained = f"; trained on {self.data}" if self.data else "; data set unknown (a bare model folder)"
        return what + condition + trained + (f". {self.summary}" if self.summary else "")

    def test_set(self):
        """The test split of the model's data set (loaded once, never downloaded); ValueError if there is none."""
        with self._lock:
            if "test_set" not in self._cache:
                self._cache["test_set"] = self._load_test_set()
        found = self._cache["test_set"]
        if isinstance(found, str):
            raise ValueError(found)
        return found

    def _load_test_set(self):
        if self.data is None:
            return (
                f"{self.name} is a bare model folder: no test images (start the app with its run folder, "
                f"or --data NAME)"
            )
        try:
            dataset = data.load(
                self.data,
                "test",
                root=self.data_root,
                binarize=self.binarize,
                image_size=self.image_size,
                download=False,
            )
            check_compatible(self.model, dataset)
        except (ValueError, OSError, ImportError) as error:
            return f"the test split of {self.data} cannot be read here: {' '.join(str(error).split())}"
        return dataset

    def class_names(self) -> list[str]:
        """One label per class for the page: the data set's names where it has them, else the numbers."""
        count = self.num_classes or 0
        try:
            names = self.test_set().class_names
        except ValueError:
            names = None
        if names and len(names) >= count:
            return [str(k) if str(names[k]) == str(k) else f"{k}: {names[k]}" for k in range(count)]
        return [str(k) for k in range(count)]


def tab_reasons(entry: AppModel) -> dict[str, str | None]:
    """For each tab, None when it works for this model, else the one-line reason it is disabled."""
    model = entry.model
    if getattr(model, "loss_name", "nll") != "nll" or not hasattr(model, "log_prob"):
        reason = f"{model.name} is not an exact-likelihood model (it has no log_prob)"
        return {tab: reason for tab in TABS}
    reasons = dict.fromkeys(TABS)
    if model.image_shape[0] not in (1, 3):
        reasons["complete"] = reasons["likelihood"] = reasons["compress"] = (
            f"images of {model.image_shape[0]} channels cannot be drawn or uploaded (1 or 3 only)"
        )
    if entry.cond_dim is not None:
        code = f"{model.name} draws from a {entry.cond_dim}-number code, not a class: " + (
            "use the New glyphs tab" if entry.identity else "give it an identity run for the New glyphs tab"
        )
        reasons["complete"] = reasons["sample"] = code
    if entry.identity is None:
        reasons["glyphs"] = (
            "needs the model of an identity run (pixelcnn identity --out RUN, or the zoo's "
            "glyphs-identity): start the app with that RUN"
        )
    return reasons


def class_choices(entry: AppModel, tab: str) -> list[str]:
    """The class menu of a tab: empty for a model without classes."""
    if not entry.num_classes:
        return []
    first = {
        "complete": [MOST_LIKELY],
        "sample": [EACH_CLASS],
        "likelihood": [UNKNOWN_CLASS],
        "compress": [MOST_LIKELY],
        "inside": [MOST_LIKELY],
    }[tab]
    return first + entry.class_names()


def _class_index(choice) -> int:
    """A menu entry ("3" or "3: name") -> 3."""
    try:
        return int(str(choice).split(":")[0])
    except ValueError:
        raise ValueError(f"expected a class (or identity) number, got {choice!r}") from None


# ------------------------------------------------------------------------------------------ images in
def _describe_conversion(path: Path, model) -> list[str]:
    """What ``data.read_image(..., resize=True)`` will change in the file at ``path``, in words for the page."""
    from PIL import Image

    channels, height, width = model.image_shape
    notes = []
    with Image.open(path) as image:
        mode, size = image.mode, image.size
    grey = mode in GREY_MODES
    if "A" in mode or mode in ("P", "PA"):
        notes.append("transparency dropped")
    if channels == 1 and not grey:
        notes.append(f"colour ({mode}) converted to grey")
    if channels == 3 and grey:
        notes.append("grey repeated into R, G, B")
    if size != (width, height):
        notes.append(f"{size[0]}x{size[1]} scaled and centre-cropped to {width}x{height}")
    if model.levels != 256:
        notes.append(
            f"8-bit values v mapped to {model.levels} levels as round(v * {model.levels - 1} / 255)"
            + (" (a threshold at 128)" if model.levels == 2 else "")
        )
    return notes


def read_image_file(entry: AppModel, path: str | Path) -> tuple[torch.Tensor, list[str]]:
    """An uploaded image file -> (int64 image [1, C, H, W] for the model, what was converted, in words)."""
    path = Path(path)
    try:
        notes = _describe_conversion(path, entry.model)
    except OSError:
        raise ValueError(
            f"{path.name} is not an image file this app can read ({', '.join(sorted(data.IMAGE_SUFFIXES))})"
        ) from None
    return data.read_image(path, entry.model.image_shape, entry.model.levels, resize=True), notes


def read_drawing(entry: AppModel, drawing, folder: Path) -> tuple[torch.Tensor, list[str]]:
    """A sketchpad's grey picture (dark strokes on white, uint8 [h, w] or [h, w, C]) -> the model's image.

    Ink becomes high values, as in the training digits (white on black): the
    drawing is inverted, written to a PNG in ``folder`` and read like any file.
    """
    from PIL import Image

    if drawing is None:
        raise ValueError("draw something first (the sketchpad is empty)")
    array = np.asarray(drawing)
    if array.ndim == 3:
        array = array[..., :3].mean(-1) if array.shape[-1] >= 3 else array[..., 0]  # [h, w] grey
    if array.ndim != 2 or array.size == 0:
        raise ValueError(f"expected a drawing (a grey or colour picture), got an array of shape {list(array.shape)}")
    ink = 255 - np.clip(np.rint(array), 0, 255).astype(np.uint8)  # [h, w], ink high
    if not ink.any():
        raise ValueError("draw something first (the sketchpad is empty)")
    path = folder / "drawing.png"
    Image.fromarray(ink, "L").save(path)
    image, notes = read_image_file(entry, path)
    return image, ["drawing inverted (ink is bright, as in the training images)"] + notes


def test_images(entry: AppModel, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Test images by index: (int64 images [B, C, H, W], labels [B])."""
    dataset = entry.test_set()
    bad = [i for i in indices if not 0 <= int(i) < len(dataset)]
    if bad:
        raise ValueError(f"test image {bad[0]} does not exist: {dataset.name} test has images 0..{len(dataset) - 1}")
    index = torch.tensor([int(i) for i in indices], dtype=torch.long)
    images = dataset.prepare_batch(dataset.images[index], torch.Generator().manual_seed(0))
    return images.long(), dataset.labels[index]


def most_likely_class(entry: AppModel, image: torch.Tensor, rows: int | None = None) -> int:
    """The class k maximising p(the top ``rows`` rows of ``image`` | k) (all rows by default).

    The NLL of a pixel depends only on the pixels before it, so the bits of
    the top rows (``analysis.nll_bits``) are exactly -log2 p(top rows | k).
    """
    rows = entry.model.image_shape[1] if rows is None else rows
    if rows == 0:
        return 0
    bits = [
        float(analysis.nll_bits(entry.model, image, torch.tensor([k]))[0, :, :rows].sum())
        for k in range(entry.num_classes)
    ]
    return int(np.argmin(bits))


def resolve_class(entry: AppModel, choice, image: torch.Tensor | None = None, rows: int | None = None):
    """(class index or None, words for the page) from a class menu's choice."""
    if not entry.num_classes:
        return None, ""
    if choice in (None, "", MOST_LIKELY, UNKNOWN_CLASS, EACH_CLASS):
        if image is None:
            return 0, "class 0"
        k = most_likely_class(entry, image, rows)
        given = "kept rows" if rows is not None else "image"
        return k, f"class {entry.class_names()[k]} (the most likely given the {given})"
    k = _class_index(choice)
    if not 0 <= k < entry.num_classes:
        raise ValueError(f"class must be in 0..{entry.num_classes - 1}, got {k}")
    return k, f"class {entry.class_names()[k]}"


# ------------------------------------------------------------------------------------------ drawing, streamed
class _Stopped(Exception):
    """Raised inside the sampler's callback when the page stopped listening: the drawing thread ends."""


def stream_draws(draw, every: int):
    """Run ``draw(callback)`` in a thread and yield (x uint8 [B, C, H, W] so far, pixels drawn, result or None).

    The sampler calls ``callback(row, col, x)`` after each pixel; every
    ``every`` pixels a copy of x is queued (the page shows the newest one, so
    a slow page skips frames, never slows the sampler). The last item carries
    the sampler's result. When the caller stops iterating, the thread stops at
    its next pixel.
    """
    frames: queue.Queue = queue.Queue()
    stop = threading.Event()
    drawn = 0

    def callback(row, col, x):
        nonlocal drawn
        if stop.is_set():
            raise _Stopped()
        drawn += 1
        if drawn % every == 0:
            frames.put(("frame", x.detach().to("cpu", torch.uint8, copy=True), drawn))

    def run():
        try:
            result = draw(callback)
            frames.put(("done", result.detach().cpu(), drawn))
        except _Stopped:
            pass
        except BaseException as error:  # noqa: BLE001 - handed to the page's thread, which reports it
            frames.put(("error", error, drawn))

    thread = threading.Thread(target=run, daemon=True, name="pixelcnn-app-draw")
    thread.start()
    try:
        while True:
            kind, value, count = frames.get()
            while kind == "frame" and not frames.empty():  # skip to the newest frame
                kind, value, count = frames.get()
            if kind == "error":
                raise value
            yield (value.to(torch.uint8), count, value if kind == "done" else None)
            if kind == "done":
                return
    finally:
        stop.set()


def _animation_frame(snapshot: torch.Tensor, done: int, rank: torch.Tensor, levels: int, title: str):
    """One frame of ``viz.sampling_animation``: the pixels of ``rank`` < ``done`` drawn, the others tinted."""
    frames = analysis.SamplingFrames(frames=[snapshot], pixels_done=[done], rank=rank)
    columns = min(len(snapshot), 4)
    scale = max(1, (2 * SCREEN_PIXELS // 3) // max(snapshot.shape[2:]))  # 28 x 28 -> 4 screen pixels
    return viz.sampling_animation(frames, levels=levels, scale=scale, columns=columns, title=title)[0]


def _check_count(n, what: str = "number of images", limit: int = MAX_DRAWS) -> int:
    if n is None or int(n) != n or not 1 <= int(n) <= limit:
        raise ValueError(f"{what} must be an integer in 1..{limit}, got {n}")
    return int(n)


def _generator(seed) -> torch.Generator:
    if seed is None or int(seed) != seed or not 0 <= int(seed) < 2**63:
        raise ValueError(f"seed must be an integer in 0..2**63-1, got {seed}")
    return torch.Generator().manual_seed(int(seed))


def _temperature(value) -> float:
    if value is None or not float(value) > 0 or not math.isfinite(float(value)):
        raise ValueError(f"temperature must be a positive number, got {value}")
    return float(value)


def complete_stream(
    entry: AppModel, image: torch.Tensor, known_rows: int, class_choice, n: int, seed: int, temperature: float = 1.0
):
    """Complete ``image`` [1, C, H, W] ``n`` times below its top ``known_rows`` rows, row by row.

    Yields (live picture, None, words) per finished row, then (last live
    picture, completions int64 [n, C, H, W], words). ``model.complete`` keeps
    the known rows as given, bit for bit.
    """
    model = entry.model
    n, generator, temperature = _check_count(n), _generator(seed), _temperature(temperature)
    height, width = model.image_shape[1:]
    if known_rows is None or int(known_rows) != known_rows or not 0 <= int(known_rows) <= height:
        raise ValueError(f"rows kept must be an integer in 0..{height}, got {known_rows}")
    known_rows = int(known_rows)
    cond, said = resolve_class(entry, class_choice, image, rows=known_rows)
    # When each pixel is drawn: the kept ones first (-1, always shown), then the sampler's order.
    order = model.generation_order(known_rows)
    kept = height * width - len(order)
    rank = torch.full((height, width), -1, dtype=torch.long)
    for index, (row, col) in enumerate(order):
        rank[row, col] = kept + index
    batch = image.expand(n, *image.shape[1:])

    def draw(callback):
        return model.complete(batch, known_rows, cond, temperature=temperature, generator=generator, callback=callback)

    title = f"{n} completions below row {known_rows}" + (f", {said}" if said else "")
    for snapshot, done, result in stream_draws(draw, every=width):
        yield (
            _animation_frame(snapshot, kept + done, rank, model.levels, f"completing rows {known_rows}.."),
            result,
            title,
        )


def sample_stream(entry: AppModel, class_choice, n: int, seed: int, temperature: float = 1.0):
    """``n`` samples (or ``n`` of each class), drawn row by row: yields (live picture, None or the samples, words)."""
    model = entry.model
    n, generator, temperature = _check_count(n), _generator(seed), _temperature(temperature)
    cond, said = None, ""
    if entry.num_classes:
        if class_choice in (None, "", EACH_CLASS):
            cond = torch.arange(n) % entry.num_classes  # classes 0, 1, ... in turn
            said = "classes in turn"
        else:
            cond, said = resolve_class(entry, class_choice)
    count = len(cond) if isinstance(cond, torch.Tensor) else n
    rank = analysis.generation_rank(model)
    width = model.image_shape[2]

    def draw(callback):
        return model.sample(count, cond, temperature=temperature, generator=generator, callback=callback)

    title = f"{count} samples of {entry.name}" + (f", {said}" if said else "") + f", temperature {temperature:g}"
    for snapshot, done, result in stream_draws(draw, every=width):
        yield _animation_frame(snapshot, done, rank, model.levels, "sampling"), result, title


def save_grid(images: torch.Tensor, levels: int, path: Path, *, scale: int = 1) -> Path:
    """The images [N, C, H, W] side by side in one row, no padding, as a PNG: ``scale`` 1 keeps every pixel."""
    return viz.save(viz.image_grid(images, levels=levels, columns=len(images), scale=scale, padding=0), path)


# ------------------------------------------------------------------------------------------ likelihood
def likelihood(entry: AppModel, image: torch.Tensor, class_choice) -> tuple[dict, object]:
    """The exact NLL of ``image`` [1, C, H, W], its place among the test images, the anomaly scores, a heat map.

    Returns (numbers, heat-map picture). ``class_choice``: a class, or
    ``UNKNOWN_CLASS`` (the marginal over classes) for a class-conditional model.
    """
    model = entry.model
    cond, said = None, ""
    if entry.num_classes:
        if class_choice in (None, "", UNKNOWN_CLASS):
            cond, said = scores.MARGINAL, "class unknown: -log (1/K) sum_k p(x | k)"
        else:
            k, said = resolve_class(entry, class_choice)
            cond = torch.tensor([k])
    found = scores.anomaly_scores(model, image, cond, background=entry.background)
    numbers = {
        "nll_nats": float(found["nll"][0]),
        "bits_per_dim": float(found["bits_per_dim"][0]),
        "png_bits": float(found["png_bits"][0]),
        "complexity_bits": float(found["complexity"][0]),
        "likelihood_ratio_nats": (float(found["likelihood_ratio"][0]) if "likelihood_ratio" in found else None),
        "condition": said,
    }
    try:
        reference = reference_nlls(entry, marginal=isinstance(cond, str))
        numbers["percentile"] = float((reference <= numbers["nll_nats"]).double().mean() * 100)
        numbers["reference_images"] = len(reference)
        numbers["reference_mean_nats"] = float(reference.mean())
    except ValueError as error:
        numbers["percentile"], numbers["percentile_note"] = None, str(error)
    # The heat map spreads the NLL over the pixels; a marginal NLL has no per-pixel split, so the map is
    # drawn under the most likely class (said under the picture).
    map_cond = cond
    if isinstance(cond, str):
        map_cond = torch.tensor([most_likely_class(entry, image)])
        numbers["map_class"] = int(map_cond[0])
    bits = analysis.nll_bits(model, image, map_cond)
    caption = "per-pixel NLL" + (f" under class {int(map_cond[0])}" if map_cond is not None else "")
    picture = viz.nll_figure(image.cpu(), bits, levels=model.levels, captions=[caption])
    return numbers, picture


def reference_nlls(entry: AppModel, *, marginal: bool) -> torch.Tensor:
    """NLLs of the first ``reference_images`` test images (under their labels, or marginal), computed once."""
    key = ("reference", marginal)
    with entry._lock:
        found = entry._cache.get(key)
    if found is None:
        dataset = entry.test_set()
        count = min(entry.reference_images, len(dataset))
        images, labels = test_images(entry, list(range(count)))
        cond = scores.MARGINAL if marginal else (labels if entry.num_classes else None)
        found = scores.nll(entry.model, images, cond)
        with entry._lock:
            entry._cache[key] = found
    return found


def inverted(entry: AppModel, image: torch.Tensor) -> torch.Tensor:
    """levels - 1 - x: the negative of an image (an out-of-distribution example)."""
    return entry.model.levels - 1 - image


def noise(entry: AppModel, seed: int) -> torch.Tensor:
    """An image of independent uniform values, int64 [1, C, H, W]."""
    return torch.randint(0, entry.model.levels, (1, *entry.model.image_shape), generator=_generator(seed))


# ------------------------------------------------------------------------------------------ compression
def compress(entry: AppModel, images: torch.Tensor, cond, folder: Path) -> tuple[Path, dict]:
    """Code ``images`` [B, C, H, W] into ``folder``/images.pxcz, decode it back and compare; sizes against
    PNG, WebP and JPEG-XL (where installed) of the same pixels, one file per image."""
    model = entry.model
    if len(images) > MAX_COMPRESS_IMAGES:
        raise ValueError(f"at most {MAX_COMPRESS_IMAGES} images at a time here, got {len(images)}")
    blob = coding.compress(model, images, cond)
    path = folder / "images.pxcz"
    path.write_bytes(blob)
    decoded = coding.decompress(model, path.read_bytes())
    dims = len(images) * math.prod(model.image_shape)
    nll = scores.nll(model, images, cond)
    sizes = {"pxcz": len(blob)}
    notes = {}
    for codec in scores.LOSSLESS_CODECS:
        if scores.codec_available(codec):
            sizes[codec] = sum(scores.codec_bytes(images.cpu().numpy(), model.levels, codec))
        else:
            notes[codec] = "not installed (pip install pillow-jxl-plugin)"
    numbers = {
        "images": len(images),
        "bytes": sizes,
        "bits_per_dim": {k: 8 * v / dims for k, v in sizes.items()},
        "nll_bits_per_dim": float(nll.sum()) / math.log(2) / dims,
        "not_measured": notes,
        "round_trip_identical": bool(torch.equal(decoded.cpu().long(), images.cpu().long())),
    }
    return path, numbers


# ------------------------------------------------------------------------------------------ new glyphs
def identity_sets(entry: AppModel):
    """The identity run's test and train splits (glyphs: one identity per font), loaded once."""
    with entry._lock:
        if "identity_sets" not in entry._cache:
            try:
                entry._cache["identity_sets"] = identity.load_identity_data(
                    entry.identity["config"], splits=("test", "train")
                )
            except (ValueError, OSError, ImportError) as error:
                entry._cache["identity_sets"] = f"the identity run's data cannot be read here: {error}"
    found = entry._cache["identity_sets"]
    if isinstance(found, str):
        raise ValueError(found)
    return found


def identity_choices(entry: AppModel) -> list[str]:
    """The identities (fonts) the model never trained on, for the page: "7" or "7: Font Name"."""
    if entry.identity is None:
        return []
    unseen = entry.identity["measurements"].get("unseen_classes") or []
    try:
        names = identity_sets(entry)[0].class_names
    except ValueError:
        names = None
    return [f"{c}: {names[c]}" if names and c < len(names) and str(names[c]) != str(c) else str(c) for c in unseen]


def new_glyphs(entry: AppModel, sources: torch.Tensor, n: int, seed: int, temperature: float = 1.0):
    """``n`` new images in the style of ``sources`` [k, C, H, W] (a few glyphs of one font), from their code.

    The code is ``identity.identity_code`` (the mean embedding of the
    sources); the identity model draws from it. Returns (picture, new images).
    """
    model = entry.model
    n, generator, temperature = _check_count(n), _generator(seed), _temperature(temperature)
    code = identity.identity_code(model, sources.to(model._device()))  # [D]
    drawn = model.sample(n, code.expand(n, -1), temperature=temperature, generator=generator)
    picture = viz.grouped_rows(
        [sources[None].cpu(), drawn[None].cpu()], levels=model.levels, scale=screen_scale(model.image_shape) // 2 or 1
    )
    return picture, drawn


def identity_sources(entry: AppModel, choice, k: int) -> torch.Tensor:
    """``k`` images of the identity ``choice`` (a menu entry)."""
    return identity.source_images(identity_sets(entry), _class_index(choice), _check_count(k, "sources"))


def interpolate(entry: AppModel, choice_from, choice_to, steps: int, seed: int, sources: int = 4):
    """Decodings along the line from one identity's code to another's ([1] Figure 5): a picture."""
    model = entry.model
    steps = _check_count(steps, "steps", MAX_DRAWS)
    if steps < 2:
        raise ValueError("steps must be at least 2 (both ends are included)")
    sets = identity_sets(entry)
    a, b = _class_index(choice_from), _class_index(choice_to)
    line = identity.interpolate_identities(
        model, sets, a, b, sources=sources, steps=steps, rows=1, seed=_generator(seed).initial_seed()
    )
    ends = [identity.source_images(sets, c, 1)[None] for c in (a, b)]
    return viz.grouped_rows(
        [ends[0], line, ends[1]], levels=model.levels, scale=screen_scale(model.image_shape) // 2 or 1
    )


# ------------------------------------------------------------------------------------------ look inside
FAMILIES = ("pixelcnn", "gated_pixelcnn", "row_lstm", "diagonal_bilstm")


def receptive_field_picture(entry: AppModel, row: int, col: int, channel: int = 0):
    """Which earlier pixels the prediction of (row, col) reads in this model: a picture and the counts."""
    model = entry.model
    field_map = analysis.receptive_field(model, (int(row), int(col)), int(channel))
    counts = analysis.count_context(field_map)
    title = f"{entry.name}: what pixel ({int(row)}, {int(col)}) reads"
    return viz.receptive_field_figure([(entry.name, field_map)], title=title), counts


def family_fields(n_layers: int, image_size: int = 16):
    """The receptive field of the same pixel in freshly built models of each family (weights do not matter)."""
    n_layers = _check_count(n_layers, "layers", 24)
    pixel = analysis.default_pixel((1, image_size, image_size))
    panels = [
        (name, analysis.fresh_receptive_field(name, image_size=image_size, n_layers=n_layers, pixel=pixel))
        for name in FAMILIES
    ]
    return viz.receptive_field_figure(panels, title=f"Pixel {pixel}, {n_layers} layers, by family")


def softmax_picture(entry: AppModel, image: torch.Tensor, row: int, col: int, class_choice):
    """The predicted distribution of pixel (row, col) of ``image`` given the pixels before it, per channel."""
    model = entry.model
    k, said = resolve_class(entry, class_choice, image)
    cond = None if k is None else torch.tensor([k])
    distributions = analysis.pixel_distributions(model, image, [(int(row), int(col))], cond=cond)
    title = f"p(pixel ({int(row)}, {int(col)}) | the pixels before it)" + (f", {said}" if said else "")
    return viz.softmax_figure(image[0].cpu(), distributions, levels=model.levels, title=title), distributions

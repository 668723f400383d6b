"""The page: Gradio Blocks with one tab per thing a person can do, wired to ``work.py``.

Each handler takes the model's name first, opens a folder of its own for
what it writes (so two browsers never share a file), and turns a wrong input
into one line on the page (``gr.Error``), never a traceback. Changing the
model re-checks every tab: one that does not fit the model is disabled and
says why.
"""

from __future__ import annotations

import functools
import inspect
import tempfile
from pathlib import Path

import gradio as gr
import torch

from . import work

DRAWING, UPLOAD, TEST_IMAGE = "drawing", "uploaded file", "test image"
INVERTED, NOISE = "inverted test image", "noise"
NO_CLASS = "none (unconditional)"
CANVAS = 280  # sketchpad side in screen pixels (a 28 x 28 digit: 10 a pixel)
INTRO = (
    "Exact-likelihood autoregressive image models. Each tab calls the pixelcnn library; "
    "nothing is stored after the page closes."
)


def one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _refuse(error: BaseException):
    """Any failure of a handler, as one line on the page."""
    if isinstance(error, gr.Error):
        return error
    if isinstance(error, (ValueError, OSError, RuntimeError, ImportError, KeyError, IndexError)):
        return gr.Error(one_line(error), print_exception=False)
    return gr.Error(f"{type(error).__name__}: {one_line(error)}", print_exception=False)


def on_page(fn):
    """A handler whose errors appear as one line on the page (generators too: they stream)."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def streaming(*args):
            try:
                yield from fn(*args)
            except Exception as error:  # noqa: BLE001 - every failure becomes one line on the page
                raise _refuse(error) from None

        return streaming

    @functools.wraps(fn)
    def plain(*args):
        try:
            return fn(*args)
        except Exception as error:  # noqa: BLE001
            raise _refuse(error) from None

    return plain


class Page:
    """The models, the app's temporary folder, and the handlers that the Blocks call."""

    def __init__(self, entries: list[work.AppModel], workdir: Path):
        if not entries:
            raise ValueError("the app needs at least one model")
        self.entries = {entry.name: entry for entry in entries}
        self.workdir = Path(workdir)

    def entry(self, name: str) -> work.AppModel:
        if name not in self.entries:
            raise ValueError(f"unknown model {name!r}; this app serves {', '.join(self.entries)}")
        return self.entries[name]

    def folder(self) -> Path:
        """A new folder for one request's files, inside the app's temporary folder."""
        return Path(tempfile.mkdtemp(prefix="request-", dir=self.workdir))

    def check_tab(self, entry: work.AppModel, tab: str) -> None:
        reason = work.tab_reasons(entry)[tab]
        if reason is not None:
            raise ValueError(f"{work.TAB_TITLES[tab]} does not apply to {entry.name}: {reason}")

    def image(self, entry: work.AppModel, source: str, drawing, upload, index, folder: Path):
        """(image [1, C, H, W], label or None, what was converted) from the chosen source."""
        if source == DRAWING:
            composite = drawing.get("composite") if isinstance(drawing, dict) else drawing
            image, notes = work.read_drawing(entry, composite, folder)
            return image, None, notes
        if source == UPLOAD:
            if not upload:
                raise ValueError("upload an image file first")
            path = upload[0] if isinstance(upload, list) else upload
            image, notes = work.read_image_file(entry, path)
            return image, None, notes
        if source in (TEST_IMAGE, INVERTED):
            images, labels = work.test_images(entry, [_integer(index, "test image")])
            if source == INVERTED:
                return work.inverted(entry, images), None, ["inverted: levels - 1 - x"]
            return images, int(labels[0]) if entry.num_classes else None, []
        if source == NOISE:
            return work.noise(entry, _integer(index, "seed")), None, ["uniform noise"]
        raise ValueError(f"unknown image source {source!r}")

    # ----------------------------------------------------------------------------- handlers
    def complete(self, name, source, drawing, upload, index, known_rows, class_choice, n, seed, temperature):
        entry = self.entry(name)
        self.check_tab(entry, "complete")
        folder = self.folder()
        image, label, notes = self.image(entry, source, drawing, upload, index, folder)
        if label is not None and class_choice in (None, "", work.MOST_LIKELY):
            class_choice = str(label)
        said = _notes(notes)
        for live, result, title in work.complete_stream(
            entry, image, _integer(known_rows, "rows kept"), class_choice, n, _integer(seed, "seed"), temperature
        ):
            if result is None:
                yield live, gr.skip(), gr.skip(), f"{title}. {said}"
                continue
            known = _integer(known_rows, "rows kept")
            grid = work.viz.completion_grid(
                image.cpu(),
                result[None],
                known_rows=known,
                levels=entry.model.levels,
                scale=work.screen_scale(entry.model.image_shape) // 2 or 1,
            )
            path = work.save_grid(result, entry.model.levels, folder / "completions.png")
            yield live, grid, str(path), f"{title}: the top {known} rows kept as given. {said}"

    def sample(self, name, class_choice, n, seed, temperature):
        entry = self.entry(name)
        self.check_tab(entry, "sample")
        folder = self.folder()
        for live, result, title in work.sample_stream(entry, class_choice, n, _integer(seed, "seed"), temperature):
            if result is None:
                yield live, gr.skip(), gr.skip(), title
                continue
            grid = work.viz.image_grid(
                result,
                levels=entry.model.levels,
                columns=min(len(result), 8),
                scale=work.screen_scale(entry.model.image_shape) // 2 or 1,
            )
            grid_path = work.viz.save(grid, folder / "samples-grid.png")
            path = work.save_grid(result, entry.model.levels, folder / "samples.png")
            yield live, str(grid_path), str(path), title + ": done."

    def likelihood(self, name, source, drawing, upload, index, class_choice):
        entry = self.entry(name)
        self.check_tab(entry, "likelihood")
        folder = self.folder()
        # A test image's label is not used here: "unknown (marginal)" scores it as an image of unknown class.
        image, _, notes = self.image(entry, source, drawing, upload, index, folder)
        numbers, picture = work.likelihood(entry, image, class_choice)
        numbers["converted"] = notes
        return picture, _likelihood_words(numbers), numbers

    def compress(self, name, source, uploads, count, class_choice):
        entry = self.entry(name)
        self.check_tab(entry, "compress")
        folder = self.folder()
        model = entry.model
        notes: list[str] = []
        if source == UPLOAD:
            if not uploads:
                raise ValueError("upload one or more image files first")
            read = [work.read_image_file(entry, path) for path in (uploads if isinstance(uploads, list) else [uploads])]
            images = torch.cat([image for image, _ in read])
            notes = sorted({note for _, found in read for note in found})
            labels = None
        else:
            count = _integer(count, "number of test images")
            if not 1 <= count <= work.MAX_COMPRESS_IMAGES:
                raise ValueError(f"number of test images must be in 1..{work.MAX_COMPRESS_IMAGES}, got {count}")
            images, labels = work.test_images(entry, list(range(count)))
        cond = None
        if entry.num_classes:
            if labels is not None and class_choice in (None, "", work.MOST_LIKELY):
                cond = labels
            elif class_choice in (None, "", work.MOST_LIKELY):
                cond = torch.tensor([work.most_likely_class(entry, image[None]) for image in images])
            else:
                cond = torch.full((len(images),), work.resolve_class(entry, class_choice)[0])
        path, numbers = work.compress(entry, images, cond, folder)
        numbers["converted"] = notes
        preview = work.viz.image_grid(
            images,
            levels=model.levels,
            columns=min(len(images), 8),
            scale=work.screen_scale(model.image_shape) // 3 or 1,
        )
        return str(path), preview, _compress_words(numbers), numbers

    def glyphs(self, name, source, choice, k, uploads, drawing, n, seed):
        entry = self.entry(name)
        self.check_tab(entry, "glyphs")
        folder = self.folder()
        if source == UPLOAD:
            if not uploads:
                raise ValueError("upload a few glyph images first")
            files = uploads if isinstance(uploads, list) else [uploads]
            sources = torch.cat([work.read_image_file(entry, path)[0] for path in files])
        elif source == DRAWING:
            composite = drawing.get("composite") if isinstance(drawing, dict) else drawing
            sources = work.read_drawing(entry, composite, folder)[0]
        else:
            if not choice:
                raise ValueError("choose a font (identity) the model never trained on")
            sources = work.identity_sources(entry, choice, _integer(k, "glyphs to learn from"))
        picture, drawn = work.new_glyphs(entry, sources, n, _integer(seed, "seed"))
        path = work.save_grid(drawn, entry.model.levels, folder / "glyphs.png")
        return picture, str(path)

    def interpolate(self, name, choice_from, choice_to, steps, seed):
        entry = self.entry(name)
        self.check_tab(entry, "glyphs")
        if not choice_from or not choice_to:
            raise ValueError("choose the two fonts (identities) to go between")
        return work.interpolate(entry, choice_from, choice_to, _integer(steps, "steps"), _integer(seed, "seed"))

    def receptive_field(self, name, row, col):
        entry = self.entry(name)
        self.check_tab(entry, "inside")
        picture, counts = work.receptive_field_picture(entry, _integer(row, "row"), _integer(col, "column"))
        return picture, counts

    def families(self, layers):
        return work.family_fields(_integer(layers, "layers"))

    def softmax(self, name, source, drawing, index, row, col, class_choice):
        entry = self.entry(name)
        self.check_tab(entry, "inside")
        image, label, notes = self.image(entry, source, drawing, None, index, self.folder())
        if label is not None and class_choice in (None, "", work.MOST_LIKELY):
            class_choice = str(label)
        picture, distributions = work.softmax_picture(
            entry, image, _integer(row, "row"), _integer(col, "column"), class_choice
        )
        return picture, {
            "probabilities": [d.probs.tolist() for d in distributions],
            "observed": [d.observed for d in distributions],
            "converted": notes,
        }

    # ----------------------------------------------------------------------------- model choice
    def fit(self, name):
        """Updates of every tab's reason, button and menus for the model ``name``."""
        entry = self.entry(name)
        reasons = work.tab_reasons(entry)
        _, height, width = entry.model.image_shape
        updates = [gr.update(value=entry.describe())]
        for tab in work.TABS:
            reason = reasons[tab]
            updates.append(
                gr.update(value=f"**Not for this model:** {reason}" if reason else "", visible=reason is not None)
            )
            updates.append(gr.update(interactive=reason is None))
        for tab in ("complete", "sample", "likelihood", "compress", "inside"):
            choices = work.class_choices(entry, tab)
            updates.append(
                gr.update(choices=choices or [NO_CLASS], value=(choices or [NO_CLASS])[0], interactive=bool(choices))
            )
        identities = work.identity_choices(entry)
        updates += [
            gr.update(choices=identities, value=identities[0] if identities else None),
            gr.update(choices=identities, value=identities[0] if identities else None),
            gr.update(choices=identities, value=identities[1] if len(identities) > 1 else None),
        ]
        updates += [
            gr.update(maximum=height, value=height // 2),
            gr.update(maximum=height - 1, value=min(height - 1, (3 * height) // 4)),
            gr.update(maximum=width - 1, value=width // 2),
        ]
        return updates


def _integer(value, what: str) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be an integer, got {value!r}") from None
    if not number.is_integer():
        raise ValueError(f"{what} must be an integer, got {value!r}")
    return int(number)


def _notes(notes: list[str]) -> str:
    return ("Converted: " + "; ".join(notes) + ".") if notes else ""


def _likelihood_words(numbers: dict) -> str:
    lines = [
        f"**NLL {numbers['nll_nats']:.2f} nats** = {numbers['bits_per_dim']:.4f} bits/dim"
        + (f" ({numbers['condition']})" if numbers["condition"] else "")
    ]
    if numbers.get("percentile") is not None:
        lines.append(
            f"Higher than {numbers['percentile']:.1f}% of the first {numbers['reference_images']} test "
            f"images' NLLs (their mean: {numbers['reference_mean_nats']:.2f} nats)."
        )
    else:
        lines.append(f"No percentile: {numbers['percentile_note']}")
    lines.append(
        f"Complexity score: {numbers['complexity_bits']:.1f} bits (NLL in bits minus the "
        f"{numbers['png_bits']:.0f} bits of a PNG; higher: more anomalous)."
    )
    lines.append(
        f"Likelihood ratio: {numbers['likelihood_ratio_nats']:.2f} nats"
        if numbers["likelihood_ratio_nats"] is not None
        else "Likelihood ratio: needs a background model (pixelcnn app RUN --background RUN0)."
    )
    if numbers["converted"]:
        lines.append(_notes(numbers["converted"]))
    return "\n\n".join(lines)


def _compress_words(numbers: dict) -> str:
    names = {"pxcz": "pixelcnn (.pxcz)", **{k: work.scores.CODEC_NAMES[k] for k in work.scores.LOSSLESS_CODECS}}
    rows = ["| file | bytes | bits/dim |", "|---|---:|---:|"]
    for codec, size in numbers["bytes"].items():
        rows.append(f"| {names[codec]} | {size:,} | {numbers['bits_per_dim'][codec]:.3f} |")
    for codec, why in numbers["not_measured"].items():
        rows.append(f"| {names[codec]} | {why} | |")
    rows.append(f"| the model's NLL (ideal) | | {numbers['nll_bits_per_dim']:.3f} |")
    check = (
        "Round trip: decoded and compared, **identical bit for bit**."
        if numbers["round_trip_identical"]
        else "Round trip: **the decoded images differ**: report this as a bug."
    )
    text = f"{numbers['images']} image(s).\n\n" + "\n".join(rows) + "\n\n" + check
    return text + ("\n\n" + _notes(numbers["converted"]) if numbers["converted"] else "")


# ----------------------------------------------------------------------------------------- layout
def _sketchpad(elem_id: str):
    return gr.Sketchpad(
        label="Draw (dark strokes on white)",
        type="numpy",
        image_mode="L",
        canvas_size=(CANVAS, CANVAS),
        fixed_canvas=True,
        layers=False,
        brush=gr.Brush(colors=["#000000"], default_size=12, color_mode="fixed"),
        elem_id=elem_id,
    )


def _menu(choices: list[str], label: str, *, second: bool = False):
    """A menu whose choices follow the model (``Page.fit``); any value is accepted here and checked by the handler,
    since the server knows only the first model's choices."""
    choices = choices or [NO_CLASS]
    return gr.Dropdown(choices, value=choices[min(int(second), len(choices) - 1)], label=label, allow_custom_value=True)


def _picture(label: str, elem_id: str):
    return gr.Image(label=label, type="pil", format="png", interactive=False, elem_id=elem_id)


def build_blocks(page: Page):
    """The Blocks of the app (not yet launched)."""
    first = next(iter(page.entries.values()))
    # The server checks a slider's value against the range it was made with: make it fit every model's images
    # (the handlers check each model's own size).
    tallest = max(entry.model.image_shape[1] for entry in page.entries.values())
    widest = max(entry.model.image_shape[2] for entry in page.entries.values())
    reasons_md, buttons, class_menus = {}, {}, {}
    with gr.Blocks(title="pixelcnn", analytics_enabled=False) as blocks:
        gr.Markdown("# pixelcnn\n" + INTRO)
        model_menu = gr.Dropdown(list(page.entries), value=first.name, label="Model", elem_id="model")
        about = gr.Markdown(first.describe(), elem_id="about")
        with gr.Tabs():
            with gr.Tab(work.TAB_TITLES["complete"], id="complete"):
                reasons_md["complete"] = gr.Markdown(visible=False, elem_id="complete-reason")
                with gr.Row():
                    with gr.Column():
                        c_source = gr.Radio([DRAWING, UPLOAD, TEST_IMAGE], value=DRAWING, label="Start from")
                        c_sketch = _sketchpad("complete-sketch")
                        c_upload = gr.File(label="Image file", file_types=["image"], type="filepath")
                        c_index = gr.Number(0, label="Test image number", precision=0)
                        c_rows = gr.Slider(
                            0, tallest, value=first.model.image_shape[1] // 2, step=1, label="Rows kept (from the top)"
                        )
                        class_menus["complete"] = _menu(work.class_choices(first, "complete"), "Class")
                        c_n = gr.Slider(1, 8, value=4, step=1, label="Completions")
                        c_seed = gr.Number(0, label="Seed", precision=0)
                        c_temperature = gr.Slider(0.1, 2.0, value=1.0, step=0.05, label="Temperature")
                        buttons["complete"] = gr.Button("Complete", variant="primary", elem_id="complete-button")
                    with gr.Column():
                        c_live = _picture("Completions, drawn row by row", "complete-live")
                        c_grid = _picture("Original | what the model saw | completions", "complete-grid")
                        c_file = gr.File(label="Completions, one file pixel per image pixel", elem_id="complete-file")
                        c_words = gr.Markdown(elem_id="complete-words")
            with gr.Tab(work.TAB_TITLES["sample"], id="sample"):
                reasons_md["sample"] = gr.Markdown(visible=False, elem_id="sample-reason")
                with gr.Row():
                    with gr.Column():
                        class_menus["sample"] = _menu(work.class_choices(first, "sample"), "Class")
                        s_n = gr.Slider(1, work.MAX_DRAWS, value=8, step=1, label="Images")
                        s_seed = gr.Number(0, label="Seed", precision=0)
                        s_temperature = gr.Slider(0.1, 2.0, value=1.0, step=0.05, label="Temperature")
                        buttons["sample"] = gr.Button("Sample", variant="primary", elem_id="sample-button")
                    with gr.Column():
                        s_live = _picture("Drawn pixel by pixel (shown row by row)", "sample-live")
                        s_grid = gr.Image(
                            label="Samples (download as PNG)",
                            type="filepath",
                            format="png",
                            interactive=False,
                            elem_id="sample-grid",
                        )
                        s_file = gr.File(label="Samples, one file pixel per image pixel", elem_id="sample-file")
                        s_words = gr.Markdown(elem_id="sample-words")
            with gr.Tab(work.TAB_TITLES["likelihood"], id="likelihood"):
                reasons_md["likelihood"] = gr.Markdown(visible=False, elem_id="likelihood-reason")
                with gr.Row():
                    with gr.Column():
                        l_source = gr.Radio(
                            [DRAWING, UPLOAD, TEST_IMAGE, INVERTED, NOISE], value=TEST_IMAGE, label="Image"
                        )
                        l_sketch = _sketchpad("likelihood-sketch")
                        l_upload = gr.File(label="Image file", file_types=["image"], type="filepath")
                        l_index = gr.Number(0, label="Test image number (noise: its seed)", precision=0)
                        class_menus["likelihood"] = _menu(work.class_choices(first, "likelihood"), "Class")
                        buttons["likelihood"] = gr.Button("Score", variant="primary", elem_id="likelihood-button")
                    with gr.Column():
                        l_map = _picture("Per-pixel NLL (bits)", "likelihood-map")
                        l_words = gr.Markdown(elem_id="likelihood-words")
                        l_numbers = gr.JSON(label="Numbers", elem_id="likelihood-numbers")
            with gr.Tab(work.TAB_TITLES["compress"], id="compress"):
                reasons_md["compress"] = gr.Markdown(visible=False, elem_id="compress-reason")
                with gr.Row():
                    with gr.Column():
                        z_source = gr.Radio([TEST_IMAGE, UPLOAD], value=TEST_IMAGE, label="Images")
                        z_count = gr.Number(8, label="How many test images (the first ones)", precision=0)
                        z_upload = gr.File(
                            label="Image files", file_types=["image"], file_count="multiple", type="filepath"
                        )
                        class_menus["compress"] = _menu(
                            work.class_choices(first, "compress"), "Class (of uploaded images)"
                        )
                        buttons["compress"] = gr.Button("Compress", variant="primary", elem_id="compress-button")
                    with gr.Column():
                        z_file = gr.File(label="The compressed file (.pxcz)", elem_id="compress-file")
                        z_preview = _picture("The images coded", "compress-preview")
                        z_words = gr.Markdown(elem_id="compress-words")
                        z_numbers = gr.JSON(label="Numbers", elem_id="compress-numbers")
            with gr.Tab(work.TAB_TITLES["glyphs"], id="glyphs"):
                reasons_md["glyphs"] = gr.Markdown(visible=False, elem_id="glyphs-reason")
                with gr.Row():
                    with gr.Column():
                        g_source = gr.Radio(
                            ["a font it never saw", UPLOAD, DRAWING],
                            value="a font it never saw",
                            label="Learn the style from",
                        )
                        g_identity = _menu(work.identity_choices(first), "Font (identity) never trained on")
                        g_k = gr.Slider(1, 16, value=4, step=1, label="Glyphs to learn from")
                        g_upload = gr.File(
                            label="A few glyph images", file_types=["image"], file_count="multiple", type="filepath"
                        )
                        g_sketch = _sketchpad("glyphs-sketch")
                        g_n = gr.Slider(1, work.MAX_DRAWS, value=8, step=1, label="New glyphs")
                        g_seed = gr.Number(0, label="Seed", precision=0)
                        buttons["glyphs"] = gr.Button("Draw new glyphs", variant="primary", elem_id="glyphs-button")
                        g_from = _menu(work.identity_choices(first), "Interpolate from")
                        g_to = _menu(work.identity_choices(first), "to", second=True)
                        g_steps = gr.Slider(2, work.MAX_DRAWS, value=8, step=1, label="Steps")
                        g_interpolate = gr.Button("Interpolate", elem_id="interpolate-button")
                    with gr.Column():
                        g_picture = _picture("The glyphs given | new ones in their style", "glyphs-picture")
                        g_file = gr.File(label="New glyphs, one file pixel per image pixel")
                        g_line = _picture("From one font's code to the other's", "interpolate-picture")
            with gr.Tab(work.TAB_TITLES["inside"], id="inside"):
                reasons_md["inside"] = gr.Markdown(visible=False, elem_id="inside-reason")
                with gr.Row():
                    with gr.Column():
                        i_row = gr.Slider(
                            0, tallest - 1, value=(3 * first.model.image_shape[1]) // 4, step=1, label="Pixel row"
                        )
                        i_col = gr.Slider(
                            0, widest - 1, value=first.model.image_shape[2] // 2, step=1, label="Pixel column"
                        )
                        buttons["inside"] = gr.Button(
                            "Receptive field of this pixel", variant="primary", elem_id="inside-button"
                        )
                        i_layers = gr.Slider(1, 24, value=6, step=1, label="Layers of the fresh models")
                        i_families = gr.Button("Compare the families (blind spots)", elem_id="families-button")
                        i_source = gr.Radio([TEST_IMAGE, DRAWING], value=TEST_IMAGE, label="Image for the softmax")
                        i_index = gr.Number(0, label="Test image number", precision=0)
                        i_sketch = _sketchpad("inside-sketch")
                        class_menus["inside"] = _menu(work.class_choices(first, "inside"), "Class")
                        i_softmax = gr.Button("Softmax of this pixel", elem_id="softmax-button")
                    with gr.Column():
                        i_field = _picture("What the pixel reads", "inside-field")
                        i_counts = gr.JSON(label="Counts")
                        i_family_picture = _picture("The same pixel in each family", "families-picture")
                        i_softmax_picture = _picture("The predicted distribution", "softmax-picture")
                        i_probs = gr.JSON(label="Probabilities")

        fit_outputs = [about]
        for tab in work.TABS:
            fit_outputs += [reasons_md[tab], buttons[tab]]
        fit_outputs += [class_menus[t] for t in ("complete", "sample", "likelihood", "compress", "inside")]
        fit_outputs += [g_identity, g_from, g_to, c_rows, i_row, i_col]
        model_menu.change(on_page(page.fit), model_menu, fit_outputs, api_name="fit")
        blocks.load(on_page(page.fit), model_menu, fit_outputs, api_name=False)

        buttons["complete"].click(
            on_page(page.complete),
            [
                model_menu,
                c_source,
                c_sketch,
                c_upload,
                c_index,
                c_rows,
                class_menus["complete"],
                c_n,
                c_seed,
                c_temperature,
            ],
            [c_live, c_grid, c_file, c_words],
            api_name="complete",
        )
        buttons["sample"].click(
            on_page(page.sample),
            [model_menu, class_menus["sample"], s_n, s_seed, s_temperature],
            [s_live, s_grid, s_file, s_words],
            api_name="sample",
        )
        buttons["likelihood"].click(
            on_page(page.likelihood),
            [model_menu, l_source, l_sketch, l_upload, l_index, class_menus["likelihood"]],
            [l_map, l_words, l_numbers],
            api_name="likelihood",
        )
        buttons["compress"].click(
            on_page(page.compress),
            [model_menu, z_source, z_upload, z_count, class_menus["compress"]],
            [z_file, z_preview, z_words, z_numbers],
            api_name="compress",
        )
        buttons["glyphs"].click(
            on_page(page.glyphs),
            [model_menu, g_source, g_identity, g_k, g_upload, g_sketch, g_n, g_seed],
            [g_picture, g_file],
            api_name="glyphs",
        )
        g_interpolate.click(
            on_page(page.interpolate), [model_menu, g_from, g_to, g_steps, g_seed], g_line, api_name="interpolate"
        )
        buttons["inside"].click(
            on_page(page.receptive_field), [model_menu, i_row, i_col], [i_field, i_counts], api_name="receptive_field"
        )
        i_families.click(on_page(page.families), i_layers, i_family_picture, api_name="families")
        i_softmax.click(
            on_page(page.softmax),
            [model_menu, i_source, i_sketch, i_index, i_row, i_col, class_menus["inside"]],
            [i_softmax_picture, i_probs],
            api_name="softmax",
        )
    return blocks

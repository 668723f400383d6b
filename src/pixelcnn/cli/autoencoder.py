"""Auto-encoder commands: ``interpolate`` (Fig. 5 of [1]), ``reconstruct`` (Fig. 6), ``identity`` and
``identity-sample`` (new images of an unseen identity from its embedding, [1] Section 3.2, Figures 4 and 5).

RUN is a run folder of ``pixelcnn train`` or ``pixelcnn identity``, or a model
folder written by ``pixelcnn.save`` (then give ``--data``). Test images are
chosen by index (``--index``, ``--from``, ``--to``), by class (``--classes``)
or spread evenly over the split.

[1] A. van den Oord et al. Conditional Image Generation with PixelCNN Decoders. NIPS 2016.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from .errors import Terminated, UsageError
from .flags import (
    add_command,
    add_data_flags,
    add_dataclass_flags,
    add_device_flag,
    add_draw_flags,
    add_force_flag,
    add_out_flag,
    add_precision_flag,
    add_run_argument,
    check_temperature,
    positive,
)
from .images import pick_images, scale_for
from .paths import output_path
from .runs import dataset_for, open_run, resolve_device, run_folder

EXAMPLES = {
    "interpolate": """
  pixelcnn interpolate runs/ae --from 0 --to 700 --steps 8 --out interp.png
  pixelcnn interpolate runs/identity --from 0 --to 62 --rows 3 --out interp.png       # two held-out fonts' A

Each row: test image A, --steps decodings of the codes on the line from A's code
to B's (ends included), test image B. A row's samples all use the same seed, so
the row varies only through the code; --rows N draws N rows with seeds
--seed, --seed+1, ... (an MSE auto-encoder decodes its mean: one row).""",
    "reconstruct": """
  pixelcnn reconstruct runs/ae --n 8 --out recon.png
  pixelcnn reconstruct runs/ae --mse-run runs/mse --n 8 --samples 4 --out recon.png
  pixelcnn reconstruct runs/identity --n 4 --out held_out_glyphs.png

Each row: the test image | its MSE auto-encoder reconstruction (with --mse-run, or
when RUN is an mse_ae) | --samples PixelCNN auto-encoder decodings of its code.
--mse-run must model the same images as RUN (train both with the same --binarize).""",
    "identity": """
  pixelcnn identity --minutes 10 --out runs/glyphs
  pixelcnn identity --data mnist5k --binarize dynamic --classes 0-6 --identity-images 0 --minutes 5 --out runs/digits
  pixelcnn identity --data folder:faces --binarize none --image-size 32 --minutes 60 --out runs/faces

Trains an embedding network with a triplet loss on the training identities
only (--classes, or by default those of the train split: for glyphs every font
outside the held-out families), then a conditional PixelCNN on (image, code of
its identity) pairs of those (a pixelcnn_ae whose encoder is the frozen
embedding network), then a judge (an identity classifier of real images of all
identities) that scores new images of the unseen ones against chance. Writes
RUN/model, RUN/identity.json, RUN/identity.png (each row: source images of an
unseen identity | new images drawn from their code) and RUN/interpolation.png
(from one unseen identity's code to another's). folder:PATH with one
sub-folder per identity works too, e.g. faces (LFW, CelebA by identity): put
the people held out in faces/test/NAME/ and the others in faces/train/NAME/.
Run again with the same flags, it reuses the trained model and draws the
pictures again. Stopped early (Ctrl-C, SIGTERM, a kill), it resumes when run
again with the same flags: each stage saves its state in RUN/stages every 2
minutes, at its end and when stopped, so a kill loses at most 2 minutes.""",
    "identity-sample": """
  pixelcnn identity-sample runs/identity --out identity.png          # the unseen identities
  pixelcnn identity-sample runs/identity --classes 0-3 --sources 2 --samples 6 --out seen.png
  pixelcnn identity-sample runs/identity --interpolate --steps 8 --rows 3 --out interpolation.png""",
}

# identity flag -> (IdentityConfig field, type, help); the defaults are the config's
# The IdentityConfig fields that are flags of `pixelcnn identity` (their help: the fields' own), in --help order.
IDENTITY_FIELDS = (
    "embedding_dim",
    "triplet_steps",
    "identity_images",
    "margin",
    "decoder_minutes",
    "decoder_steps",
    "n_layers",
    "hidden",
    "kernel_size",
    "batch_size",
    "judge_steps",
    "judge_samples",
)


def _add_choice_of_images(parser, *, per_class_default: int) -> None:
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--index", type=int, nargs="+", metavar="I", help="test images by index in the split")
    which.add_argument("--classes", metavar="LIST", help="test images of these classes, e.g. 7-9 or 1,7")
    parser.add_argument(
        "--per-class",
        type=int,
        default=per_class_default,
        help=f"with --classes: images of each class (default: {per_class_default})",
    )


def add_parsers(sub) -> None:
    from ..identity import IdentityConfig

    interpolate = add_command(
        sub, "interpolate", "decode codes on the line between two test images' codes (Fig. 5)", EXAMPLES["interpolate"]
    )
    add_run_argument(interpolate, models="pixelcnn_ae or mse_ae")
    interpolate.add_argument(
        "--from", dest="from_index", type=int, required=True, metavar="A", help="index of the first test image"
    )
    interpolate.add_argument(
        "--to", dest="to_index", type=int, required=True, metavar="B", help="index of the last test image"
    )
    interpolate.add_argument("--steps", type=int, default=8, help="codes on the line, ends included (default: 8)")
    interpolate.add_argument("--rows", type=int, default=1, help="rows, one seed each (default: 1)")
    add_out_flag(interpolate)
    add_device_flag(interpolate)
    add_data_flags(interpolate)
    add_draw_flags(interpolate)
    add_force_flag(interpolate)
    interpolate.set_defaults(handler=cmd_interpolate)

    reconstruct = add_command(
        sub,
        "reconstruct",
        "test images | MSE auto-encoder reconstruction | PixelCNN auto-encoder samples (Fig. 6)",
        EXAMPLES["reconstruct"],
    )
    add_run_argument(reconstruct, models="pixelcnn_ae (or mse_ae)")
    reconstruct.add_argument("--mse-run", metavar="RUN2", help="an mse_ae run or model folder: add its reconstructions")
    reconstruct.add_argument("--n", type=int, default=8, help="test images, spread over the split (default: 8)")
    reconstruct.add_argument("--samples", type=int, default=4, help="decodings of each image (default: 4)")
    _add_choice_of_images(reconstruct, per_class_default=2)
    add_out_flag(reconstruct)
    add_device_flag(reconstruct)
    add_data_flags(reconstruct)
    add_draw_flags(reconstruct)
    add_force_flag(reconstruct)
    reconstruct.set_defaults(handler=cmd_reconstruct)

    defaults = IdentityConfig()
    identity = add_command(
        sub,
        "identity",
        "train a triplet embedding network and a PixelCNN on it, on some "
        "identities; draw new images of the others and judge them",
        EXAMPLES["identity"],
    )
    identity.add_argument("--data", default=defaults.data, help=f"labelled data set (default: {defaults.data})")
    identity.add_argument(
        "--binarize",
        choices=["dynamic", "threshold", "none"],
        default=defaults.binarize,
        help=f"binarization (default: {defaults.binarize})",
    )
    identity.add_argument(
        "--classes", help="the identities both networks train on, e.g. 0-6 (default: those of the train split)"
    )
    identity.add_argument(
        "--image-size", type=int, help="folder:PATH only: resize and centre-crop every image to N x N"
    )
    add_dataclass_flags(
        identity,
        IdentityConfig,
        names=IDENTITY_FIELDS,
        keep_defaults=True,
        flags={"decoder_minutes": "--minutes", "decoder_steps": "--steps"},
    )
    add_precision_flag(identity, defaults.precision)
    _add_identity_picture_flags(identity)
    add_out_flag(identity, "run folder to write (one that holds an identity run of the same flags is reused)")
    identity.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    add_device_flag(identity)
    add_draw_flags(identity)
    identity.set_defaults(handler=cmd_identity)

    identity_sample = add_command(
        sub,
        "identity-sample",
        "new images of identities from the code of a few of their images (default: the unseen identities)",
        EXAMPLES["identity-sample"],
    )
    add_run_argument(identity_sample, help_text="run folder of pixelcnn identity (its --out) or zoo:NAME of one")
    identity_sample.add_argument(
        "--classes",
        metavar="LIST",
        help="the identities, e.g. 7-9 or 1,7 (default: the unseen ones, spread, --identities of them)",
    )
    identity_sample.add_argument(
        "--sources",
        type=int,
        help="images of each identity whose code draws (default: the run's --identity-images, at least 1)",
    )
    _add_identity_picture_flags(identity_sample)
    identity_sample.add_argument(
        "--interpolate",
        action="store_true",
        help="draw the line from the first identity's code to the second's instead",
    )
    identity_sample.add_argument("--steps", type=int, default=8, help="--interpolate: codes on the line (default: 8)")
    identity_sample.add_argument("--rows", type=int, default=3, help="--interpolate: rows, one seed each (default: 3)")
    add_out_flag(identity_sample)
    add_device_flag(identity_sample)
    add_draw_flags(identity_sample)
    add_force_flag(identity_sample)
    identity_sample.set_defaults(handler=cmd_identity_sample)


def _add_identity_picture_flags(parser) -> None:
    parser.add_argument("--identities", type=int, default=8, help="rows: unseen identities drawn (default: 8)")
    parser.add_argument("--samples", type=int, default=8, help="new images of each (default: 8)")


# ------------------------------------------------------------------------------------- helpers
def open_autoencoder(path: str, device: str, *, command: str):
    """``open_run`` for a pixelcnn_ae or an mse_ae; anything else is a usage error."""
    run = open_run(path, device)
    if run.model.name not in ("pixelcnn_ae", "mse_ae"):
        raise UsageError(f"{command} needs an auto-encoder (pixelcnn_ae or mse_ae); {path} is a {run.model.name}")
    return run


def _check_draws(args, *counts: str) -> None:
    """--samples / --rows / ... positive and --temperature valid."""
    for name in counts:
        positive("--" + name.replace("_", "-"), getattr(args, name))
    check_temperature(args.temperature)


def _save_table(table, path: str, scale: int | None) -> Path:
    """Cells of 0..255 images [rows, columns, C, H, W] -> one PNG grid, a table row per grid row."""
    from .. import viz

    grid = viz.image_grid(
        table.flatten(0, 1), levels=256, columns=table.shape[1], scale=scale_for(table.shape[2:], scale)
    )
    return viz.save(grid, path)


# ------------------------------------------------------------------------------------- commands
def cmd_interpolate(args) -> str:
    args.out = output_path(args.out, args)
    import torch

    from ..viz import display_values

    _check_draws(args, "rows")
    if args.steps < 2:
        raise UsageError(f"--steps must be >= 2 (both ends are included), got {args.steps}")
    run = open_autoencoder(args.run, args.device, command="interpolate")
    model = run.model
    images, _ = pick_images(dataset_for(run, args, args.split), indices=[args.from_index, args.to_index])
    if model.name == "mse_ae":  # deterministic: its decoded means, one row
        lines = [model.interpolate(images[:1], images[1:], args.steps)]
    else:
        lines = [
            model.interpolate(
                images[:1],
                images[1:],
                args.steps,
                seed=args.seed + row,
                temperature=args.temperature,
                method=args.method,
            )
            for row in range(args.rows)
        ]  # each [steps, C, H, W]
    ends = display_values(images, model.levels)  # [2, C, H, W]
    table = torch.stack([torch.cat([ends[:1], display_values(line, model.levels), ends[1:]]) for line in lines])
    path = _save_table(table, args.out, args.scale)  # [rows, steps + 2, ...]
    return (
        f"wrote {path}: test image {args.from_index} | {args.steps} decodings of the codes from its code to "
        f"{args.to_index}'s | test image {args.to_index}" + (f"; {len(lines)} rows" if len(lines) > 1 else "")
    )


def cmd_reconstruct(args) -> str:
    args.out = output_path(args.out, args)
    import torch

    from ..viz import display_values

    _check_draws(args, "samples")
    run = open_autoencoder(args.run, args.device, command="reconstruct")
    model = run.model
    mse = model if model.name == "mse_ae" else None
    if args.mse_run is not None:
        if mse is not None:
            raise UsageError("RUN is already the mse_ae: give the pixelcnn_ae as RUN and the mse_ae as --mse-run")
        mse = open_run(args.mse_run, args.device).model
        if mse.name != "mse_ae":
            raise UsageError(f"--mse-run must be an mse_ae; {args.mse_run} is a {mse.name}")
        if (mse.image_shape, mse.levels) != (model.image_shape, model.levels):
            raise UsageError(
                f"--mse-run models images {mse.image_shape} with {mse.levels} levels; RUN models "
                f"{model.image_shape} with {model.levels} (train both with the same --binarize)"
            )
    images, _ = pick_images(
        dataset_for(run, args, args.split), n=args.n, indices=args.index, classes=args.classes, per_class=args.per_class
    )
    columns = [display_values(images, model.levels)[:, None]]  # [B, 1, C, H, W]
    parts = ["test image"]
    if mse is not None:
        columns.append(display_values(mse.reconstruct(images), model.levels)[:, None])
        parts.append("MSE auto-encoder reconstruction")
    if model.name == "pixelcnn_ae":
        drawn = model.reconstruct(
            images,
            args.samples,
            temperature=args.temperature,
            method=args.method,
            generator=torch.Generator().manual_seed(args.seed),
        )  # [B, samples, C, H, W]
        columns.append(display_values(drawn, model.levels))
        parts.append(f"{args.samples} PixelCNN auto-encoder samples")
    path = _save_table(torch.cat(columns, dim=1), args.out, args.scale)
    return f"wrote {path}: {len(images)} rows of " + " | ".join(parts)


def _identity_sets(config: dict):
    """(test split, train split) of a run's data: source images come from the test split, else the train split."""
    from ..identity import load_identity_data

    return load_identity_data(config, ("test", "train"))


def _spread(identities, n: int) -> list[int]:
    """``n`` of ``identities`` spread evenly over them (all when fewer)."""
    import torch

    identities = list(identities)
    if n >= len(identities):
        return identities
    return [identities[i] for i in torch.linspace(0, len(identities) - 1, n).round().long().tolist()]


def _names(datasets, identities) -> list[str] | None:
    names = datasets[0].class_names
    return None if names is None else [names[c] for c in identities]


def identity_figure(model, datasets, identities, *, sources: int, args, out) -> Path:
    """[1] Figure 4: each row, ``sources`` images of an identity | ``args.samples`` new images from their code."""
    from .. import viz
    from ..identity import draw_identities

    shown, drawn = draw_identities(
        model,
        datasets,
        identities,
        sources=sources,
        samples=args.samples,
        seed=args.seed,
        temperature=args.temperature,
        method=args.method,
    )
    picture = viz.grouped_rows(
        [shown, drawn],
        levels=model.levels,
        scale=scale_for(model.image_shape, args.scale),
        row_names=_names(datasets, identities),
    )
    return viz.save(picture, out)


def interpolation_figure(
    model, datasets, identity_from: int, identity_to: int, *, sources: int, steps: int, rows: int, args, out
) -> Path:
    """[1] Figure 5: each row, an image of A | decodings from A's code to B's (one seed per row) | an image of B."""
    from .. import viz
    from ..identity import interpolate_identities, source_images

    line = interpolate_identities(
        model,
        datasets,
        identity_from,
        identity_to,
        sources=sources,
        steps=steps,
        rows=rows,
        seed=args.seed,
        temperature=args.temperature,
        method=args.method,
    )
    ends = [source_images(datasets, c, 1)[None].expand(rows, -1, -1, -1, -1) for c in (identity_from, identity_to)]
    picture = viz.grouped_rows(
        [ends[0], line, ends[1]], levels=model.levels, scale=scale_for(model.image_shape, args.scale)
    )
    return viz.save(picture, out)


def _judge_lines(measurements: dict) -> list[str]:
    """The judge's figures of RUN/identity.json, one line each."""
    judge = measurements.get("judge")
    if judge is None:
        return []

    def figure(name):
        value = judge[name]
        return (
            f"{value['fraction']:.3f} +- {value['standard_error']:.3f} ({value['fraction'] / judge['chance']:.1f}x "
            f"chance, {value['images']} images)"
        )

    return [
        f"judge (an identity classifier of real images, {judge['unseen_identities']} unseen identities, chance "
        f"{judge['chance']:.3f}): accuracy on real held-out images {judge['real_held_out_accuracy']:.3f}",
        f"  new images assigned to the identity whose code drew them: {figure('generated')}",
        f"  control, drawn from a wrong identity's code, assigned to the first: {figure('wrong_identity_control')}",
    ]


def cmd_identity(args) -> str:
    args.out = str(output_path(args.out, args, kind="run"))
    import signal

    from ..identity import IdentityConfig, finished_identity, parse_classes, train_identity
    from ..serialization import load
    from ..train.signals import StoppedBySignal

    _check_draws(args, "samples", "identities")
    config = IdentityConfig(
        data=args.data,
        binarize=None if args.binarize == "none" else args.binarize,
        train_classes=None if args.classes is None else parse_classes(args.classes),
        image_size=args.image_size,
        precision=args.precision,
        seed=args.seed,
        **{field: getattr(args, field) for field in IDENTITY_FIELDS},
    )
    result = finished_identity(config, args.out)
    if result is not None:
        print(f"identity: {args.out} holds a finished run of these settings: reusing its model")
    else:
        try:
            result = train_identity(
                config, args.out, device=resolve_device(args.device), log=print, progress=args.progress
            )
        except StoppedBySignal as stopped:  # the stage under way saved its state: 143 or 130
            raise Terminated() if stopped.signum == signal.SIGTERM else KeyboardInterrupt() from None
    measured = result.measurements
    lines = [
        f"embedding 1-NN accuracy on {measured['seen']['split']} images of the training identities: "
        f"{measured['seen']['nearest_neighbour_accuracy']:.3f}; NLL given the code: "
        f"{measured['seen']['nll_given_code']:.2f} nats"
    ]
    unseen = measured["unseen_classes"]
    if not unseen:
        return "\n".join(lines + [f"trained on every identity of {config.data}: no unseen identity to draw"])
    lines.append(
        f"the same for the {len(unseen)} unseen identities: {measured['unseen']['nearest_neighbour_accuracy']:.3f}"
        f"; {measured['unseen']['nll_given_code']:.2f} nats"
    )
    lines += _judge_lines(measured)
    model = load(result.model_path, map_location=resolve_device(args.device))
    datasets = _identity_sets(asdict(config))
    sources = max(1, config.identity_images)
    rows = _spread(unseen, args.identities)
    path = identity_figure(model, datasets, rows, sources=sources, args=args, out=Path(args.out) / "identity.png")
    lines.append(
        f"wrote {path}: each row {sources} image(s) of an unseen identity | {args.samples} new images from their code"
    )
    if len(rows) >= 2:
        path = interpolation_figure(
            model,
            datasets,
            rows[0],
            rows[1],
            sources=sources,
            steps=8,
            rows=3,
            args=args,
            out=Path(args.out) / "interpolation.png",
        )
        lines.append(f"wrote {path}: from the code of unseen identity {rows[0]} to that of {rows[1]}, 3 seeds")
    return "\n".join(lines)


def cmd_identity_sample(args) -> str:
    args.out = output_path(args.out, args)
    from ..identity import parse_classes, read_identity

    _check_draws(args, "samples", "identities", "rows")
    try:
        saved = read_identity(run_folder(args.run))
    except FileNotFoundError as err:
        raise UsageError(str(err)) from None
    config = saved["config"]
    model = open_run(args.run, args.device).model
    datasets = _identity_sets(config)
    if args.classes is not None:
        identities = list(parse_classes(args.classes))
        known = datasets[0].num_classes
        if any(c >= known for c in identities):
            raise UsageError(f"{config['data']} has identities 0..{known - 1}; got {args.classes}")
    else:
        identities = _spread(saved["measurements"]["unseen_classes"], args.identities)
        if not identities:
            raise UsageError("the run trained on every identity: give --classes")
    sources = max(1, config.get("identity_images") or 0) if args.sources is None else args.sources
    positive("--sources", sources)
    if args.interpolate:
        if len(identities) < 2:
            raise UsageError("--interpolate needs two identities (--classes A,B)")
        if args.steps < 2:
            raise UsageError(f"--steps must be >= 2 (both ends are included), got {args.steps}")
        path = interpolation_figure(
            model,
            datasets,
            identities[0],
            identities[1],
            sources=sources,
            steps=args.steps,
            rows=args.rows,
            args=args,
            out=args.out,
        )
        return (
            f"wrote {path}: each row an image of identity {identities[0]} | {args.steps} decodings from its code "
            f"to that of {identities[1]} | an image of {identities[1]}; {args.rows} seeds"
        )
    path = identity_figure(model, datasets, identities, sources=sources, args=args, out=args.out)
    return (
        f"wrote {path}: each row {sources} image(s) of an identity ({', '.join(map(str, identities))}) | "
        f"{args.samples} new images from their code"
    )

"""Auto-encoder commands: ``interpolate`` (Fig. 5 of [1]), ``reconstruct`` (Fig. 6), ``identity`` and
``identity-sample`` (new images of an unseen identity from its embedding, [1] Section 3.2).

RUN is a run folder of ``pixelcnn train`` or ``pixelcnn identity``, or a model
folder written by ``pixelcnn.save`` (then give ``--data``). Test images are
chosen by index (``--index``, ``--from``, ``--to``), by class (``--classes``)
or spread evenly over the split.

[1] A. van den Oord et al. Conditional Image Generation with PixelCNN Decoders. NIPS 2016.
"""
from __future__ import annotations

from pathlib import Path

from .common import (UsageError, add_command, add_data_flags, add_device_flag, add_draw_flags, add_force_flag,
                     check_temperature, dataset_for, open_run, output_path, pick_images, positive, resolve_device,
                     scale_for)

EXAMPLES = {
    "interpolate": """
  pixelcnn interpolate runs/ae --from 0 --to 700 --steps 8 --out interp.png
  pixelcnn interpolate runs/identity --from 700 --to 900 --rows 3 --out interp.png

Each row: test image A, --steps decodings of the codes on the line from A's code
to B's (ends included), test image B. A row's samples all use the same seed, so
the row varies only through the code; --rows N draws N rows with seeds
--seed, --seed+1, ... (an MSE auto-encoder decodes its mean: one row).""",
    "reconstruct": """
  pixelcnn reconstruct runs/ae --n 8 --out recon.png
  pixelcnn reconstruct runs/ae --mse-run runs/mse --n 8 --samples 4 --out recon.png
  pixelcnn reconstruct runs/identity --classes 7-9 --per-class 2 --out sevens_to_nines.png

Each row: the test image | its MSE auto-encoder reconstruction (with --mse-run, or
when RUN is an mse_ae) | --samples PixelCNN auto-encoder decodings of its code.
--mse-run must model the same images as RUN (train both with the same --binarize).""",
    "identity": """
  pixelcnn identity --classes 0-6 --minutes 5 --out runs/identity5
  pixelcnn identity --data mnist5k --classes 0-4 --triplet-steps 1000 --steps 2000 --out runs/identity04

Trains an embedding network with a triplet loss on the training images of
--classes only, then a conditional PixelCNN on (image, embedding) pairs of
those classes (a pixelcnn_ae whose encoder is the frozen embedding network);
writes RUN/model, RUN/identity.json and RUN/identity.png: images of the
classes neither network saw, each followed by new images drawn from its
embedding. Run again with the same flags, it reuses the trained model and
draws the picture again.""",
    "identity-sample": """
  pixelcnn identity-sample runs/identity --out identity.png          # the unseen classes
  pixelcnn identity-sample runs/identity --classes 0-9 --per-class 1 --samples 6 --out all.png""",
}

# identity flag -> (IdentityConfig field, type, help); the defaults are the config's
IDENTITY_FLAGS = {
    "--embedding-dim": ("embedding_dim", int, "size of the embedding"),
    "--triplet-steps": ("triplet_steps", int, "steps of the triplet stage"),
    "--margin": ("margin", float, "triplet margin"),
    "--minutes": ("decoder_minutes", float, "minutes of PixelCNN training"),
    "--steps": ("decoder_steps", int, "steps of PixelCNN training; the first of --steps and --minutes stops it"),
    "--n-layers": ("n_layers", int, "the PixelCNN's gated layers"),
    "--hidden": ("hidden", int, "the PixelCNN's maps per layer"),
    "--batch-size": ("batch_size", int, "images per PixelCNN step"),
}


def _add_choice_of_images(parser, *, per_class_default: int) -> None:
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--index", type=int, nargs="+", metavar="I", help="test images by index in the split")
    which.add_argument("--classes", metavar="LIST", help="test images of these classes, e.g. 7-9 or 1,7")
    parser.add_argument("--per-class", type=int, default=per_class_default,
                        help=f"with --classes: images of each class (default: {per_class_default})")


def add_parsers(sub) -> None:
    from ..embedding import IdentityConfig

    interpolate = add_command(sub, "interpolate", "decode codes on the line between two test images' codes (Fig. 5)",
                              EXAMPLES["interpolate"])
    interpolate.add_argument("run", metavar="RUN", help="pixelcnn_ae or mse_ae: run folder or model folder")
    interpolate.add_argument("--from", dest="from_index", type=int, required=True, metavar="A",
                             help="index of the first test image")
    interpolate.add_argument("--to", dest="to_index", type=int, required=True, metavar="B",
                             help="index of the last test image")
    interpolate.add_argument("--steps", type=int, default=8, help="codes on the line, ends included (default: 8)")
    interpolate.add_argument("--rows", type=int, default=1, help="rows, one seed each (default: 1)")
    interpolate.add_argument("--out", required=True, help="PNG file to write")
    add_device_flag(interpolate)
    add_data_flags(interpolate)
    add_draw_flags(interpolate)
    add_force_flag(interpolate)
    interpolate.set_defaults(handler=cmd_interpolate)

    reconstruct = add_command(sub, "reconstruct", "test images | MSE auto-encoder reconstruction | PixelCNN "
                                                  "auto-encoder samples (Fig. 6)", EXAMPLES["reconstruct"])
    reconstruct.add_argument("run", metavar="RUN", help="pixelcnn_ae (or mse_ae): run folder or model folder")
    reconstruct.add_argument("--mse-run", metavar="RUN2", help="an mse_ae run or model folder: add its reconstructions")
    reconstruct.add_argument("--n", type=int, default=8, help="test images, spread over the split (default: 8)")
    reconstruct.add_argument("--samples", type=int, default=4, help="decodings of each image (default: 4)")
    _add_choice_of_images(reconstruct, per_class_default=2)
    reconstruct.add_argument("--out", required=True, help="PNG file to write")
    add_device_flag(reconstruct)
    add_data_flags(reconstruct)
    add_draw_flags(reconstruct)
    add_force_flag(reconstruct)
    reconstruct.set_defaults(handler=cmd_reconstruct)

    defaults = IdentityConfig()
    identity = add_command(sub, "identity", "train a triplet embedding network and a PixelCNN on it, on some "
                                            "classes; draw new images of the others", EXAMPLES["identity"])
    identity.add_argument("--data", default=defaults.data, help=f"labelled data set (default: {defaults.data})")
    identity.add_argument("--binarize", choices=["dynamic", "threshold", "none"], default=defaults.binarize,
                          help=f"binarization (default: {defaults.binarize})")
    identity.add_argument("--classes", default="0-6", help="the classes both networks train on (default: 0-6)")
    for flag, (field, kind, text) in IDENTITY_FLAGS.items():
        default = getattr(defaults, field)
        identity.add_argument(flag, dest=field, type=kind, default=default, help=f"{text} (default: {default})")
    identity.add_argument("--per-class", type=int, default=2, help="unseen images of each class drawn (default: 2)")
    identity.add_argument("--samples", type=int, default=8, help="new images of each (default: 8)")
    identity.add_argument("--out", required=True,
                          help="run folder to write (one that holds an identity run of the same flags is reused)")
    identity.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    add_device_flag(identity)
    add_draw_flags(identity)
    identity.set_defaults(handler=cmd_identity)

    identity_sample = add_command(sub, "identity-sample", "new images of the identity of test images, from their "
                                                          "embedding (default: the classes not trained on)",
                                  EXAMPLES["identity-sample"])
    identity_sample.add_argument("run", metavar="RUN", help="a run folder of pixelcnn identity")
    identity_sample.add_argument("--samples", type=int, default=8, help="new images of each (default: 8)")
    _add_choice_of_images(identity_sample, per_class_default=2)
    identity_sample.add_argument("--out", required=True, help="PNG file to write")
    add_device_flag(identity_sample)
    add_draw_flags(identity_sample)
    add_force_flag(identity_sample)
    identity_sample.set_defaults(handler=cmd_identity_sample)


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

    grid = viz.image_grid(table.flatten(0, 1), levels=256, columns=table.shape[1],
                              scale=scale_for(table.shape[2:], scale))
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
    if model.name == "mse_ae":                                    # deterministic: its decoded means, one row
        lines = [model.interpolate(images[:1], images[1:], args.steps)]
    else:
        lines = [model.interpolate(images[:1], images[1:], args.steps, seed=args.seed + row,
                                   temperature=args.temperature, method=args.method)
                 for row in range(args.rows)]                                  # each [steps, C, H, W]
    ends = display_values(images, model.levels)                                     # [2, C, H, W]
    table = torch.stack([torch.cat([ends[:1], display_values(line, model.levels), ends[1:]]) for line in lines])
    path = _save_table(table, args.out, args.scale)                                 # [rows, steps + 2, ...]
    return (f"wrote {path}: test image {args.from_index} | {args.steps} decodings of the codes from its code to "
            f"{args.to_index}'s | test image {args.to_index}" + (f"; {len(lines)} rows" if len(lines) > 1 else ""))


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
            raise UsageError(f"--mse-run models images {mse.image_shape} with {mse.levels} levels; RUN models "
                             f"{model.image_shape} with {model.levels} (train both with the same --binarize)")
    images, _ = pick_images(dataset_for(run, args, args.split), n=args.n, indices=args.index, classes=args.classes,
                            per_class=args.per_class)
    columns = [display_values(images, model.levels)[:, None]]                      # [B, 1, C, H, W]
    parts = ["test image"]
    if mse is not None:
        columns.append(display_values(mse.reconstruct(images), model.levels)[:, None])
        parts.append("MSE auto-encoder reconstruction")
    if model.name == "pixelcnn_ae":
        drawn = model.reconstruct(images, args.samples, temperature=args.temperature, method=args.method,
                                  generator=torch.Generator().manual_seed(args.seed))  # [B, samples, C, H, W]
        columns.append(display_values(drawn, model.levels))
        parts.append(f"{args.samples} PixelCNN auto-encoder samples")
    path = _save_table(torch.cat(columns, dim=1), args.out, args.scale)
    return f"wrote {path}: {len(images)} rows of " + " | ".join(parts)


def _identity_picture(model, test_set, images, labels, args, out) -> tuple:
    """Rows of [test image | ``args.samples`` new images from its embedding] -> (PNG path, identity agreement)."""
    import torch

    from ..embedding import class_centroids, embed, identity_agreement
    from ..viz import display_values

    drawn = model.reconstruct(images, args.samples, temperature=args.temperature, method=args.method,
                              generator=torch.Generator().manual_seed(args.seed))      # [B, samples, C, H, W]
    table = torch.cat([display_values(images, model.levels)[:, None], display_values(drawn, model.levels)], dim=1)
    path = _save_table(table, out, args.scale)
    all_classes = list(range(test_set.num_classes))
    centroids = class_centroids(embed(model, test_set), test_set.labels, all_classes)
    agreement = identity_agreement(model, drawn, labels, centroids, all_classes)
    return path, (f"new images whose nearest class centroid (in the embedding) is their source's class: "
                  f"{agreement['agreement']:.3f}; assigned classes: {agreement['assigned']}")


def cmd_identity(args) -> str:
    args.out = str(output_path(args.out, args, kind="run"))
    from .. import data
    from ..embedding import IdentityConfig, finished_identity, parse_classes, train_identity
    from ..serialization import load

    _check_draws(args, "samples", "per_class")
    config = IdentityConfig(data=args.data, binarize=None if args.binarize == "none" else args.binarize,
                            train_classes=parse_classes(args.classes), seed=args.seed,
                            **{field: getattr(args, field) for field, _, _ in IDENTITY_FLAGS.values()})
    result = finished_identity(config, args.out)
    if result is not None:
        print(f"identity: {args.out} holds a finished run of these settings: reusing its model")
    else:
        result = train_identity(config, args.out, device=resolve_device(args.device), log=print,
                                progress=args.progress)
    seen = result.measurements["test_seen"]
    lines = [f"embedding 1-NN accuracy on the test images of the training classes: "
             f"{seen['nearest_neighbour_accuracy']:.3f}; test NLL given the embedding: "
             f"{seen['nll_given_embedding']:.2f} nats"]
    unseen = result.measurements["unseen_classes"]
    if not unseen:
        return "\n".join(lines + [f"trained on every class of {config.data}: no unseen class to draw"])
    never = result.measurements["test_unseen"]
    lines.append(f"the same for the unseen classes {unseen}: {never['nearest_neighbour_accuracy']:.3f}; "
                 f"{never['nll_given_embedding']:.2f} nats")
    model = load(result.model_path, map_location=resolve_device(args.device))
    test_set = data.load(config.data, "test", binarize=config.binarize)
    images, labels = pick_images(test_set, classes=",".join(map(str, unseen)), per_class=args.per_class)
    path, agreement = _identity_picture(model, test_set, images, labels, args, Path(args.out) / "identity.png")
    return "\n".join(lines + [agreement, f"wrote {path}: each row an unseen test image, then {args.samples} new "
                                         f"images from its embedding"])


def cmd_identity_sample(args) -> str:
    args.out = output_path(args.out, args)
    from .. import data
    from ..embedding import read_identity

    _check_draws(args, "samples")
    try:
        config = read_identity(args.run)["config"]
    except FileNotFoundError as err:
        raise UsageError(str(err)) from None
    model = open_run(args.run, args.device).model
    test_set = data.load(config["data"], "test", binarize=config["binarize"])
    classes = args.classes
    if classes is None and args.index is None:
        classes = ",".join(str(c) for c in range(test_set.num_classes) if c not in config["train_classes"])
        if not classes:
            raise UsageError("the run trained on every class: give --classes or --index")
    images, labels = pick_images(test_set, indices=args.index, classes=classes, per_class=args.per_class)
    path, agreement = _identity_picture(model, test_set, images, labels, args, args.out)
    return "\n".join([agreement, f"wrote {path}: each row a test image (classes {sorted(set(labels.tolist()))}), "
                                 f"then {args.samples} new images from its embedding"])

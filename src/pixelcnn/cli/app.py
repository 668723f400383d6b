"""``pixelcnn app``: the models in a browser (the optional extra ``pixelcnn[app]``, Gradio).

The models are opened here, the way every command opens a RUN (``runs.open_run``), and handed to
``pixelcnn.app``; with no RUN the app serves the zoo's models, where this installation has a zoo.
"""

from __future__ import annotations

from .errors import UsageError
from .flags import add_command, add_data_flags, add_device_flag, positive
from .runs import open_run

EXAMPLES = """
pixelcnn app runs/gated                       # one trained run, on http://127.0.0.1:7860
pixelcnn app runs/gated --port 8000 --check   # which tabs fit the model, then exit without serving
"""


def add_parsers(sub) -> None:
    parser = add_command(
        sub,
        "app",
        "serve the models in a browser: draw and complete, sample, likelihood, compress, ...",
        EXAMPLES,
        description="Start a local web app (Gradio) on the models given: draw and complete, sample, likelihood "
        "and anomaly scores, compress, new glyphs of an unseen font (an identity run), look inside. "
        "Without RUN it serves the zoo's models. It listens on 127.0.0.1 (this machine only) unless "
        "--host says otherwise, and runs until Ctrl-C. Needs: pip install 'pixelcnn[app]'.",
    )
    parser.add_argument(
        "runs",
        nargs="*",
        metavar="RUN_OR_ZOO",
        help="run folders, model folders or zoo:NAME (default: every zoo model)",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: every network)",
    )
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.add_argument(
        "--background",
        metavar="RUN",
        help="a background model for the likelihood-ratio score (see pixelcnn score --help)",
    )
    parser.add_argument(
        "--reference-images",
        type=int,
        default=500,
        help="test images the likelihood percentile is measured against (default 500)",
    )
    parser.add_argument(
        "--check", action="store_true", help="open the models, say which tabs fit each, and exit without serving"
    )
    add_data_flags(parser, split=False)
    add_device_flag(parser)
    parser.set_defaults(handler=cmd_app)


def _zoo():
    """The zoo module where this installation has one, else None."""
    try:
        from .. import zoo
    except ImportError:
        return None
    return zoo


def open_entries(args) -> list:
    """The ``AppModel`` of every RUN_OR_ZOO of the parsed ``args`` (the zoo's models when none is given)."""
    from ..app import AppModel

    zoo = _zoo()
    specs = list(args.runs)
    if not specs:
        if zoo is None:
            raise UsageError("give a RUN to serve (a run folder or a model folder): this installation has no zoo")
        specs = [f"zoo:{name}" for name in zoo.names()]
    background = open_run(args.background, args.device).model if args.background else None
    entries, names = [], set()
    for spec in specs:
        run = open_run(spec, args.device)
        data, binarize, summary = run.data, run.binarize, str(run.path)
        if spec.startswith("zoo:") and zoo is not None:
            card = zoo.card(spec[len("zoo:") :])
            data = data or card.get("data")
            summary = card.get("summary", summary)
        if data is None and args.data is not None:
            data, binarize = args.data, args.binarize
        name, copy = spec, 2
        while name in names:  # the same folder twice: tell them apart on the page
            name, copy = f"{spec} ({copy})", copy + 1
        names.add(name)
        entries.append(
            AppModel(
                name,
                run.model,
                data=data,
                binarize=binarize,
                data_root=run.data_root,
                image_size=run.image_size,
                identity=run.identity,
                summary=summary,
                background=background,
                reference_images=args.reference_images,
            )
        )
    return entries


def cmd_app(args) -> str:
    from ..app import TAB_TITLES, TABS, gradio_missing, serve, tab_reasons

    positive("--reference-images", args.reference_images)
    if not 1 <= args.port <= 65535:
        raise UsageError(f"--port must be in 1..65535, got {args.port}")
    entries = open_entries(args)
    missing = gradio_missing()
    if args.check:
        lines = []
        for entry in entries:
            lines.append(f"{entry.name}: {entry.describe()}")
            for tab, reason in zip(TABS, (tab_reasons(entry)[t] for t in TABS)):
                lines.append(f"  {TAB_TITLES[tab]}: {'yes' if reason is None else 'no, ' + reason}")
        lines.append(missing or f"would serve on http://{args.host}:{args.port}")
        return "\n".join(lines)
    if missing:
        raise ImportError(missing)
    try:
        serve(entries, host=args.host, port=args.port)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the way to stop it
        return "pixelcnn app: stopped"
    return ""

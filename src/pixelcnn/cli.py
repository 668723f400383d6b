"""The ``pixelcnn`` command. Training, evaluation and sampling commands come next."""
from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    from . import __version__, list_models, presets

    parser = argparse.ArgumentParser(
        prog="pixelcnn",
        description="Exact-likelihood autoregressive image models: PixelCNN, Gated / Conditional PixelCNN.",
        epilog="models: " + ", ".join(list_models()) + "\npresets: " + ", ".join(sorted(presets)),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"pixelcnn {__version__}")
    sub = parser.add_subparsers(dest="command")
    info = sub.add_parser("models", help="list the models and presets with their parameter counts")
    info.add_argument("--count", action="store_true", help="build each preset and count its parameters")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "models":
        from . import build, list_models, presets

        print("models: " + ", ".join(list_models()))
        for name, preset in sorted(presets.items()):
            count = ""
            if args.count:
                count = f"{sum(p.numel() for p in build(name).parameters()):>12,d}  "
            print(f"  {name:<24} {preset.model:<16} {count}{preset.description}")
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``dtcm make-synthetic --out DIR``: render the DarkActions-synth dataset (no data needed)."""

from __future__ import annotations

from dtcm.synthetic.backgrounds import FOOTAGE_ENV
from dtcm.synthetic.render import NUM_FRAMES, VERSIONS, RenderOptions


def add_cli_arguments(parser):
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--per-class", type=int, default=60, help="clips per class (default 60)")
    parser.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    parser.add_argument("--bright", action="store_true", help="write the rendered clips, not the dark ones")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--frames", type=int, default=NUM_FRAMES, help=f"frames per clip (default {NUM_FRAMES})")
    parser.add_argument(
        "--version",
        type=int,
        choices=VERSIONS,
        default=2,
        help="2: volumetric people, camera, lights (default); 1: the capsule figures of v1, exactly as before",
    )
    parser.add_argument(
        "--backgrounds",
        metavar="DIR",
        default=None,
        help="a folder of real videos and/or photographs "
        f"to use as backgrounds (alias: ${FOOTAGE_ENV}); default: procedural scenes, no data needed",
    )
    for name in RenderOptions.names():
        flag = name.replace("_", "-")
        parser.add_argument(
            f"--no-{flag}",
            dest=name,
            action="store_false",
            help="v2 without: " + RenderOptions.help(name).replace("%", "%%"),
        )


def cli_main(args) -> int:
    switches = {name: getattr(args, name) for name in RenderOptions.names()}
    options = RenderOptions(**switches) if args.version == 2 else None
    if args.version == 1 and not all(switches.values()):
        raise ValueError(
            f"--no-* switches are v2's and v1 has none, got {sorted(k for k, v in switches.items() if not v)}"
        )
    from dtcm.synthetic.dataset import make_synthetic

    s = make_synthetic(
        args.out,
        args.per_class,
        args.seed,
        args.bright,
        args.workers,
        args.frames,
        version=args.version,
        options=options,
        backgrounds=args.backgrounds,
    )
    print(
        f"wrote {s['clips']} {'bright' if s['bright'] else 'dark'} clips ({s['train']} train / {s['test']} test) "
        f"(v{s['version']}, backgrounds: {s['backgrounds']}) to {s['out']} in {s['seconds']:.1f} s ({s['seconds_per_clip']:.2f} s per clip)"
    )
    print(f"darkness Dv of the dark clips: mean {s['mean_dv']:.3f} (min {s['min_dv']:.3f}, max {s['max_dv']:.3f})")
    print(f"contact sheet: {s['contact_sheet']}")
    return 0

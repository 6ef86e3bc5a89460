"""``dtcm push FOLDER REPO_ID``: publish a model folder to the Hugging Face Hub."""

from __future__ import annotations


def add_cli_arguments(parser) -> None:
    parser.add_argument("folder", help="model folder (config.json + model.safetensors)")
    parser.add_argument("repo_id", help="Hub repo id, owner/name")
    parser.add_argument("--private", action="store_true", help="create the repo as private")
    parser.add_argument("--token", default=None, help="Hub token (default: HF_TOKEN or the logged-in one)")
    parser.add_argument("--message", default=None, help="commit message")


def cli_main(args) -> int:
    from dtcm.hub import quiet_hub_logging
    from dtcm.hub.push import push

    quiet_hub_logging()
    url = push(args.folder, args.repo_id, private=args.private, token=args.token, commit_message=args.message)
    print(f"pushed {args.folder} to {args.repo_id}: {url}")
    return 0

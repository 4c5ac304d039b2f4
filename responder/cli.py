"""The ``responder`` command: serve, check, release and replay."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from responder.errors import ConfigError, ResponderError
from responder.settings import DEFAULT_PORT

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="responder",
        description="Receive Falco alerts, match them against playbooks, respond in Kubernetes.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the HTTP sink and respond to alerts")
    _add_config_options(serve)
    serve.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help=f"address to listen on (default 0.0.0.0:{DEFAULT_PORT})",
    )
    serve.add_argument(
        "--dry-run",
        action="store_true",
        default=None,
        help="send every Kubernetes write with dryRun=All and change nothing",
    )

    check = commands.add_parser("check", help="validate playbook files and directories")
    check.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    check.add_argument(
        "--config", type=Path, help="settings file, to check notifier names against it"
    )

    release = commands.add_parser("release", help="undo the isolation of a pod")
    release.add_argument("target", metavar="NAMESPACE/POD")
    release.add_argument("--kubeconfig", type=Path, help="kubeconfig file (default: the usual)")
    release.add_argument("--context", help="kubeconfig context")
    release.add_argument("--dry-run", action="store_true", help="send the calls with dryRun=All")

    history = commands.add_parser(
        "history", help="show past alerts and the decisions made about them"
    )
    history.add_argument(
        "--journal",
        type=Path,
        default=Path("responder-journal.db"),
        help="journal file of the daemon (default: ./responder-journal.db)",
    )
    history.add_argument("--namespace", help="only alerts about pods in this namespace")
    history.add_argument("--pod", help="only alerts about this pod")
    history.add_argument("--rule", help="only alerts of this Falco rule")
    history.add_argument("--playbook", help="only alerts that this playbook matched")
    history.add_argument("--since", help="received at or after: 30m, 2h, 7d or an RFC 3339 time")
    history.add_argument("--until", help="received at or before: same forms as --since")
    history.add_argument("--limit", type=int, default=50, help="most alerts shown (default 50)")
    history.add_argument("--output", choices=("table", "json"), default="table")

    replay = commands.add_parser(
        "replay", help="show which playbooks and actions recorded alerts would trigger"
    )
    replay.add_argument("file", type=Path, metavar="FILE", help="JSONL file of alerts")
    _add_config_options(replay)
    replay.add_argument(
        "--dry-run",
        action="store_true",
        required=True,
        help="plan only: print matches and actions, run nothing (required)",
    )
    replay.add_argument("--output", choices=("table", "json"), default="table")
    return parser


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="settings file (YAML)")
    parser.add_argument(
        "--playbooks",
        type=Path,
        nargs="+",
        metavar="PATH",
        help="playbook files or directories (default: ./playbooks)",
    )
    parser.add_argument("--kubeconfig", type=Path, help="kubeconfig file")


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    if getattr(args, "playbooks", None):
        overrides["playbooks"] = args.playbooks
    if getattr(args, "dry_run", None):
        overrides["dry_run"] = True
    if getattr(args, "kubeconfig", None):
        overrides["kubernetes"] = {"kubeconfig": args.kubeconfig}
    listen = getattr(args, "listen", None)
    if listen:
        host, separator, port = listen.rpartition(":")
        if not separator or not port.isdigit():
            raise ConfigError(
                f"invalid --listen {listen!r}: write HOST:PORT, such as 0.0.0.0:2804"
            )
        overrides["server"] = {"host": host.strip("[]") or "0.0.0.0", "port": int(port)}
    return overrides


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            from responder.commands.serve import serve

            return serve(args.config, _overrides(args))
        if args.command == "check":
            from responder.commands.check import check

            return check(args.paths, config=args.config)
        if args.command == "release":
            from responder.commands.release import release

            return asyncio.run(
                release(
                    args.target,
                    kubeconfig=args.kubeconfig,
                    context=args.context,
                    dry_run=args.dry_run,
                )
            )
        if args.command == "history":
            from responder.commands.history import history, parse_moment
            from responder.store.journal import HistoryFilter

            query = HistoryFilter(
                namespace=args.namespace,
                pod=args.pod,
                rule=args.rule,
                playbook=args.playbook,
                since_ns=parse_moment(args.since) if args.since else None,
                until_ns=parse_moment(args.until) if args.until else None,
                limit=args.limit,
            )
            return history(args.journal, query, output=args.output)
        if args.command == "replay":
            from responder.commands.replay import replay

            return replay(args.file, args.config, _overrides(args), output=args.output)
    except ConfigError as error:
        print(f"responder: {error}", file=sys.stderr)
        return EXIT_INVALID
    except ResponderError as error:
        print(f"responder: {error}", file=sys.stderr)
        return EXIT_INVALID
    except KeyboardInterrupt:
        return 130
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())

"""The ``responder`` command: serve, check, release and replay."""

from __future__ import annotations

import argparse
import asyncio
import os
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
    serve.add_argument(
        "--record",
        type=Path,
        metavar="FILE",
        help="append every accepted alert, as it arrived, to this JSONL file (for replay)",
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

    _add_replay_parser(commands)
    _add_export_parser(commands)

    test = commands.add_parser("test", help="run playbook tests: alerts and expected actions")
    test.add_argument(
        "paths", nargs="+", type=Path, metavar="PATH", help="test files or directories of them"
    )
    return parser


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: must be greater than 0")
    return value


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: must be 1 or more")
    return value


def _add_replay_parser(commands: Any) -> None:
    replay = commands.add_parser(
        "replay",
        help="plan recorded alerts in process, or send them to a running responder",
    )
    replay.add_argument("file", type=Path, metavar="FILE", help="JSONL recording of alerts")
    _add_config_options(replay)
    replay.add_argument(
        "--dry-run",
        action="store_true",
        help="plan in process (the default without --to); Kubernetes writes use dryRun=All",
    )
    replay.add_argument("--output", choices=("table", "json"), default="table")
    replay.add_argument("--html", type=Path, metavar="FILE", help="also write an HTML report")
    replay.add_argument(
        "--retime",
        action="store_true",
        help="shift alert times so that the last is now, keeping the gaps",
    )
    send = replay.add_argument_group("sending to a running responder")
    send.add_argument("--to", metavar="URL", help="POST the alerts to this responder sink")
    token = send.add_mutually_exclusive_group()
    token.add_argument(
        "--token",
        help="bearer token sent in the Authorization header (visible to ps; prefer --token-file)",
    )
    token.add_argument(
        "--token-file",
        type=Path,
        metavar="FILE",
        help="read the bearer token from FILE; a trailing newline is dropped",
    )
    send.add_argument(
        "--no-drill-mark",
        action="store_true",
        help="do not send the X-Responder-Drill: true header",
    )
    send.add_argument(
        "--concurrency", type=_at_least_one, default=1, help="requests at once (default 1)"
    )
    pace = send.add_mutually_exclusive_group()
    pace.add_argument(
        "--speed",
        type=_positive,
        default=1.0,
        help="keep the recorded gaps divided by this factor (default 1; 2 is twice as fast)",
    )
    pace.add_argument("--rate", type=_positive, help="send this many alerts per second instead")
    send.add_argument("--max-alerts", type=_at_least_one, help="stop after this many alerts")
    send.add_argument("--max-seconds", type=_positive, help="stop sending after this many seconds")
    send.add_argument(
        "--wait",
        type=float,
        default=30.0,
        help="seconds to wait for the responder to finish the sent alerts (default 30)",
    )


def _add_export_parser(commands: Any) -> None:
    export = commands.add_parser("export", help="write alerts from the journal as a recording")
    export.add_argument(
        "--journal",
        type=Path,
        default=Path("responder-journal.db"),
        help="journal file of the daemon (default: ./responder-journal.db)",
    )
    export.add_argument("--namespace", help="only alerts about pods in this namespace")
    export.add_argument("--rule", help="only alerts of this Falco rule")
    export.add_argument("--since", help="received at or after: 30m, 2h, 7d or an RFC 3339 time")
    export.add_argument("--until", help="received at or before: same forms as --since")
    export.add_argument(
        "--output", required=True, metavar="FILE", help="file to write, or - for standard output"
    )


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
    if getattr(args, "record", None):
        overrides["record"] = args.record
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
            return _replay(args)
        if args.command == "export":
            from responder.commands.export import export
            from responder.commands.history import parse_moment
            from responder.store.journal import HistoryFilter

            query = HistoryFilter(
                namespace=args.namespace,
                rule=args.rule,
                since_ns=parse_moment(args.since) if args.since else None,
                until_ns=parse_moment(args.until) if args.until else None,
                limit=-1,
            )
            return export(args.journal, query, args.output)
        if args.command == "test":
            from responder.commands.test import run_tests

            return run_tests(args.paths)
    except ConfigError as error:
        print(f"responder: {error}", file=sys.stderr)
        return EXIT_INVALID
    except ResponderError as error:
        print(f"responder: {error}", file=sys.stderr)
        return EXIT_INVALID
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader of standard output went away, as with "| head": stop without a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    return EXIT_USAGE


def _token(literal: str | None, path: Path | None) -> str | None:
    if path is None:
        return literal
    try:
        return path.read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read --token-file {str(path)!r}: {error}") from None


def _replay(args: argparse.Namespace) -> int:
    from responder.commands.replay import replay
    from responder.drill.replay import ReplayOptions
    from responder.drill.send import SendOptions

    send = None
    if args.to:
        send = SendOptions(
            url=args.to,
            token=_token(args.token, args.token_file),
            drill_mark=not args.no_drill_mark,
            concurrency=args.concurrency,
            speed=args.speed,
            rate=args.rate,
            max_alerts=args.max_alerts,
            max_seconds=args.max_seconds,
        )
    options = ReplayOptions(
        output=args.output, html=args.html, retime=args.retime, send=send, wait_s=args.wait
    )
    return replay(args.file, args.config, _overrides(args), options)


if __name__ == "__main__":
    sys.exit(main())

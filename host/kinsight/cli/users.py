"""``kinsight users``: the people who sign in to the care team's app (``web.users``);
``kinsight report``: its pages as static HTML (``web.report``)."""

from __future__ import annotations

import argparse
import json
import sys
import time

from ..errors import ConfigError
from ..store import Store

_BY = "kinsight users"  # who the audit trail says made the change


def _password(args: argparse.Namespace) -> str:
    if not args.password_stdin:
        raise ConfigError("give the password on standard input with --password-stdin "
                          "(never on the command line, where others can read it)")
    line = sys.stdin.readline()
    return line[:-1] if line.endswith("\n") else line


def do_users(args: argparse.Namespace) -> int:
    from ..web import users

    if args.action in ("add", "remove", "passwd") and not args.name:
        raise ConfigError(f"users {args.action} needs a user name")
    if args.action != "add" and (args.role or args.resident):
        raise ConfigError("--role and --resident go with users add")
    now_ms = int(time.time() * 1000)
    with Store(args.db) as store:
        if args.action == "add":
            if not args.role:
                raise ConfigError(f"users add needs --role ({', '.join(users.ROLES)})")
            u = users.add_user(store, args.name, args.role, args.resident or [],
                               _password(args), by=_BY, now_ms=now_ms)
            print(f"added {u.name} ({u.role})" + (f" for {', '.join(u.residents)}"
                                                  if u.residents else ""))
        elif args.action == "remove":
            users.remove_user(store, args.name, by=_BY, now_ms=now_ms)
            print(f"removed {args.name}")
        elif args.action == "passwd":
            users.set_password(store, args.name, _password(args), by=_BY, now_ms=now_ms)
            print(f"password changed for {args.name}")
        else:
            found = users.list_users(store)
            if args.json:
                print(json.dumps([{"name": u.name, "role": u.role,
                                   "residents": list(u.residents)} for u in found], indent=1))
            else:
                for u in found:
                    print(f"{u.name}  {u.role}" + (f"  {', '.join(u.residents)}"
                                                   if u.residents else ""))
                if not found:
                    print("no users yet")
    return 0


def do_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..alerts import Policy
    from ..residents import residents
    from ..web.report import write_report

    with Store(args.db, create=False) as store:
        unknown = sorted(set(args.resident or []) - set(residents(store)))
        if unknown:
            raise ConfigError(f"no resident {', '.join(unknown)} in {args.db}")
        policy = Policy.load(args.policy) if args.policy else Policy()
        written = write_report(store, Path(args.out), policy, only=args.resident or None)
    print(f"wrote {len(written)} files to {args.out} (open {Path(args.out) / 'index.html'})")
    return 0

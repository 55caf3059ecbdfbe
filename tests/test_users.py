"""``kinsight users`` and ``web.users``: who signs in, with what role, for whom; argon2
hashes, never the password; every change audited; bad input named."""

from __future__ import annotations

import io
import json
import sys

import pytest

from kinsight.cli import main
from kinsight.residents import place
from kinsight.store import Store
from kinsight.web.users import UserError, add_user, authenticate, ensure_users, get_user


@pytest.fixture
def db(fresh_db):
    path = fresh_db()
    with Store(path) as store:
        place(store, 1, "r-1", "hall")
        place(store, 2, "r-2", "hall")
    return path


def users(db: str, *args: str, password: str | None = None, monkeypatch=None) -> int:
    if password is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(password + "\n"))
    return main(["users", "--db", db, *args])


def test_add_list_passwd_remove_through_the_command(db, monkeypatch, capsys):
    assert users(db, "add", "ann", "--role", "coordinator", "--password-stdin",
                 password="a long passphrase", monkeypatch=monkeypatch) == 0
    assert users(db, "add", "bob", "--role", "family", "--resident", "r-1",
                 "--password-stdin", password="bob's own phrase", monkeypatch=monkeypatch) == 0
    assert users(db, "add", "cat", "--role", "practitioner", "--resident", "r-1",
                 "--resident", "r-2", "--password-stdin", password="cat's long phrase",
                 monkeypatch=monkeypatch) == 0
    capsys.readouterr()
    assert users(db, "list", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed == [{"name": "ann", "role": "coordinator", "residents": []},
                      {"name": "bob", "role": "family", "residents": ["r-1"]},
                      {"name": "cat", "role": "practitioner", "residents": ["r-1", "r-2"]}]
    with Store(db) as store:
        (digest,) = store.query("SELECT password_hash FROM users WHERE name = 'bob'")[0]
        assert digest.startswith("$argon2id$") and "bob's own phrase" not in digest
        assert authenticate(store, "bob", "bob's own phrase") == get_user(store, "bob")
        assert authenticate(store, "bob", "bob's own phrasE") is None
        assert authenticate(store, "nobody", "bob's own phrase") is None
        bob = get_user(store, "bob")
        assert bob is not None and bob.may_see("r-1") and not bob.may_see("r-2")
    assert users(db, "passwd", "bob", "--password-stdin", password="a new phrase for bob",
                 monkeypatch=monkeypatch) == 0
    assert users(db, "remove", "cat") == 0
    with Store(db) as store:
        assert authenticate(store, "bob", "bob's own phrase") is None
        assert authenticate(store, "bob", "a new phrase for bob") is not None
        assert get_user(store, "cat") is None
        trail = [(w, a) for w, a in store.query(
            "SELECT who, action FROM audit WHERE alert_id IS NULL ORDER BY ts_ms, rowid")]
    assert trail == [("kinsight users", "user added")] * 3 + [
        ("kinsight users", "password changed"), ("kinsight users", "user removed")]


@pytest.mark.parametrize("args,password,said", [
    (["add", "Ann", "--role", "coordinator"], "a long passphrase", "user name 'Ann'"),
    (["add", "bob", "--role", "family"], "a long passphrase", "needs --resident"),
    (["add", "bob", "--role", "family", "--resident", "r-9"], "a long passphrase",
     "no resident r-9"),
    (["add", "ann", "--role", "coordinator", "--resident", "r-1"], "a long passphrase",
     "no --resident"),
    (["add", "bob", "--role", "family", "--resident", "r-1"], "short", "at least 10"),
    (["remove", "nobody"], None, "no user 'nobody'"),
    (["add", "bob", "--role", "family", "--resident", "r-1"], None, "--password-stdin"),
])
def test_bad_input_is_refused_by_name_and_changes_nothing(db, monkeypatch, capsys, args,
                                                         password, said):
    extra = ["--password-stdin"] if password is not None else []
    assert users(db, *args, *extra, password=password, monkeypatch=monkeypatch) == 1
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err
    with Store(db) as store:
        ensure_users(store)
        assert store.query("SELECT COUNT(*) FROM users")[0][0] == 0


def test_a_name_is_taken_once(db):
    with Store(db) as store:
        add_user(store, "ann", "coordinator", [], "a long passphrase", by="t", now_ms=1)
        with pytest.raises(UserError, match="already a user 'ann'"):
            add_user(store, "ann", "practitioner", ["r-1"], "another phrase", by="t",
                     now_ms=2)
        assert get_user(store, "ann") is not None and get_user(store, "ann").role == "coordinator"

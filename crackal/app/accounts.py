"""Users of the labelling web app, their sessions and CSRF tokens, kept in ``project.db``.

A password is stored as a salted scrypt hash (``scrypt$n$r$p$salt$hash``, hex); a session is a
random token in an HttpOnly cookie whose SHA-256 alone is stored (a copy of the database opens
no session), with its own CSRF token, and it expires ``hours`` after the login; an admin sees
and ends sessions by a public id derived from that hash (``list_sessions``, ``revoke_sessions``).
Secrets are compared with ``hmac.compare_digest``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

from crackal.active.store import ProjectStore, now
from crackal.errors import CrackalError

ROLES = ("labeller", "admin")
SCRYPT = {"n": 2**14, "r": 8, "p": 1}  # about 16 MB and 50 ms per hash
MIN_PASSWORD = 8
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_DUMMY = "scrypt$16384$8$1$" + "00" * 16 + "$" + "00" * 32  # checked when the name is unknown: same time either way


@dataclass(frozen=True)
class User:
    """A signed-in person: the name is what the ``labels`` table records as the labeller."""

    id: int
    name: str
    role: str

    @property
    def admin(self) -> bool:
        """Whether the user may start rounds and release other people's leases."""
        return self.role == "admin"


def hash_password(password: str, salt: bytes | None = None, n: int = SCRYPT["n"], r: int = SCRYPT["r"],
                  p: int = SCRYPT["p"]) -> str:
    """``scrypt$n$r$p$salt$hash`` of a password (a new random 16-byte salt unless given).

    >>> verify_password("correct horse", hash_password("correct horse", n=2**4))
    True
    """
    salt = secrets.token_bytes(16) if salt is None else salt
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024, dklen=32)
    return f"scrypt${n}${r}${p}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches a stored hash (compared in constant time)."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        computed = hash_password(password, bytes.fromhex(salt), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(computed.rsplit("$", 1)[1], digest)


def add_user(store: ProjectStore, name: str, password: str, role: str = "labeller", replace: bool = False) -> User:
    """Create a user (``role``: labeller or admin); ``replace`` sets a new password and role of an
    existing one. Names are what the labels table records, so they are short and plain."""
    if not NAME.match(name or ""):
        raise CrackalError(f"user name {name!r}: use 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit")
    if role not in ROLES:
        raise CrackalError(f"role must be one of {', '.join(ROLES)}; got {role!r}")
    if len(password) < MIN_PASSWORD:
        raise CrackalError(f"the password must have at least {MIN_PASSWORD} characters")
    hashed = hash_password(password)
    with store.transaction() as tx:
        row = tx.execute("SELECT id FROM users WHERE name = ?", (name,)).fetchone()
        if row and not replace:
            raise CrackalError(f"user {name} exists; pass --replace (replace=True) to set a new password and role")
        if row:
            tx.execute("UPDATE users SET password = ?, role = ? WHERE id = ?", (hashed, role, row["id"]))
            tx.execute("DELETE FROM sessions WHERE user_id = ?", (row["id"],))  # a new password signs everyone out
            return User(row["id"], name, role)
        cursor = tx.execute("INSERT INTO users (name, role, password, created_at) VALUES (?, ?, ?, ?)",
                            (name, role, hashed, now()))
        return User(int(cursor.lastrowid or 0), name, role)


def list_users(store: ProjectStore) -> list[User]:
    """Every user, by name."""
    return [User(r["id"], r["name"], r["role"]) for r in store.conn.execute("SELECT id, name, role FROM users ORDER BY name")]


def authenticate(store: ProjectStore, name: str, password: str) -> User | None:
    """The user with this name and password, or None (an unknown name costs a hash too)."""
    row = store.conn.execute("SELECT id, name, role, password FROM users WHERE name = ?", (name,)).fetchone()
    ok = verify_password(password, row["password"] if row else _DUMMY)
    return User(row["id"], row["name"], row["role"]) if row and ok else None


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_session(store: ProjectStore, user: User, hours: float, clock=time.time) -> tuple[str, str]:
    """Open a session for ``user``: its cookie token and its CSRF token (expired sessions are dropped)."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    moment = clock()
    with store.transaction() as tx:
        tx.execute("DELETE FROM sessions WHERE expires_at <= ?", (moment,))
        tx.execute("INSERT INTO sessions VALUES (?, ?, ?, ?, ?)", (_token_hash(token), user.id, csrf, moment, moment + hours * 3600))
    return token, csrf


def session_user(store: ProjectStore, token: str | None, clock=time.time) -> tuple[User, str] | None:
    """The user and CSRF token of a live session, or None (unknown or expired token)."""
    if not token:
        return None
    row = store.conn.execute(
        "SELECT users.id, users.name, users.role, sessions.csrf, sessions.expires_at, sessions.token_hash "
        "FROM sessions JOIN users ON users.id = sessions.user_id WHERE sessions.token_hash = ?", (_token_hash(token),)
    ).fetchone()
    if row is None or not hmac.compare_digest(row["token_hash"], _token_hash(token)) or row["expires_at"] <= clock():
        return None
    return User(row["id"], row["name"], row["role"]), row["csrf"]


def end_session(store: ProjectStore, token: str | None) -> None:
    """Log out: forget the session."""
    if token:
        with store.transaction() as tx:
            tx.execute("DELETE FROM sessions WHERE token_hash = ?", (_token_hash(token),))


def session_id(token_hash: str) -> str:
    """A session's public id, for listing and revoking it: derived from the stored hash, so it
    opens nothing (neither the token nor its hash can be had from it)."""
    return hashlib.sha256(f"crackal session id:{token_hash}".encode()).hexdigest()[:16]


def current_session_id(token: str | None) -> str | None:
    """The public id of the session of a cookie token."""
    return session_id(_token_hash(token)) if token else None


def list_sessions(store: ProjectStore, clock=time.time) -> list[dict]:
    """The live sessions, oldest first: ``id`` (see ``session_id``), ``user``, ``role``,
    ``created_at`` and ``expires_at`` (Unix times). Never the token or its hash."""
    rows = store.conn.execute(
        "SELECT sessions.token_hash, users.name, users.role, sessions.created_at, sessions.expires_at FROM sessions "
        "JOIN users ON users.id = sessions.user_id WHERE sessions.expires_at > ? ORDER BY sessions.created_at",
        (clock(),)).fetchall()
    return [{"id": session_id(r["token_hash"]), "user": r["name"], "role": r["role"], "created_at": r["created_at"],
             "expires_at": r["expires_at"]} for r in rows]


def revoke_sessions(store: ProjectStore, ids: list[str] | None = None, user: str | None = None) -> int:
    """End the sessions with these public ids, or every session of ``user``; returns how many."""
    with store.transaction() as tx:
        if user is not None:
            if tx.execute("SELECT 1 FROM users WHERE name = ?", (user,)).fetchone() is None:
                raise CrackalError(f"no user {user!r} in this project")
            return tx.execute("DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE name = ?)", (user,)).rowcount
        wanted = set(ids or [])
        hashes = [row[0] for row in tx.execute("SELECT token_hash FROM sessions") if session_id(row[0]) in wanted]
        tx.executemany("DELETE FROM sessions WHERE token_hash = ?", [(h,) for h in hashes])
        return len(hashes)


def csrf_ok(expected: str, given: str | None) -> bool:
    """Whether a request's CSRF token is its session's (constant-time comparison)."""
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())

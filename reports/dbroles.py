"""The runtime role's privileges (docs/security.md, "Two database roles").

The owner role owns the tables and runs migrations; the runtime role (web and workers) gets:
SELECT, INSERT, UPDATE, DELETE on every table of the schema, now and later (default
privileges of the owner), except that the append-only tables — every table with a
tsreview_append_only trigger, so that a table added later is covered by its trigger — get
INSERT and SELECT only, and a reveal's measures may be written once (column privileges).
Never TRUNCATE, REFERENCES or TRIGGER; it owns nothing, so it cannot ALTER a table or disable
a trigger; it cannot write django_migrations.

`grant_runtime` runs after every `migrate` on the owner alias (reports.apps) and as
`manage.py grant_runtime`.
"""

from django.db import connections, transaction

# Columns of write-once tables the runtime role may set (their trigger allows it once).
WRITE_ONCE = {"reports_viewevent": ("seconds", "reported", "painted")}

APPEND_ONLY_SQL = """
SELECT DISTINCT c.relname
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid
 WHERE p.proname = 'tsreview_append_only' AND c.relnamespace = current_schema()::regnamespace
 ORDER BY 1
"""


class RoleError(Exception):
    pass


def append_only_tables(alias: str = "default") -> list[str]:
    with connections[alias].cursor() as cursor:
        cursor.execute(APPEND_ONLY_SQL)
        return [row[0] for row in cursor.fetchall()]


def grant_runtime(*, owner_alias: str = "owner", runtime_role: str | None = None) -> list[str]:
    """Grant the runtime role what it needs and nothing more. Returns the statements run."""
    if owner_alias not in connections:
        raise RoleError("No owner database configured: set DATABASE_OWNER_URL (the role that owns the tables).")
    owner = connections[owner_alias]
    if owner.vendor != "postgresql":
        return []
    runtime_role = runtime_role or connections["default"].settings_dict["USER"]
    quote = owner.ops.quote_name
    with owner.cursor() as cursor:
        cursor.execute("SELECT current_user, current_schema()")
        owner_role, schema = cursor.fetchone()
        if runtime_role == owner_role:
            raise RoleError(f"The runtime role and the owner are one role ({owner_role}): give DATABASE_URL a role of its own.")
        cursor.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = %s", [runtime_role])
        found = cursor.fetchone()
        if found is None:
            raise RoleError(f"No role {runtime_role!r}: CREATE ROLE {runtime_role} LOGIN PASSWORD '…' first.")
        if found[0]:
            raise RoleError(f"The runtime role {runtime_role!r} is a superuser: it could undo every rule here.")
        cursor.execute("SELECT pg_has_role(%s, %s, 'MEMBER')", [runtime_role, owner_role])
        if cursor.fetchone()[0]:
            raise RoleError(f"The runtime role {runtime_role!r} is a member of the owner {owner_role!r}.")
    runtime, owner_q, schema_q = quote(runtime_role), quote(owner_role), quote(schema)
    statements = [
        f"GRANT USAGE ON SCHEMA {schema_q} TO {runtime}",
        f"REVOKE CREATE ON SCHEMA {schema_q} FROM {runtime}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema_q} TO {runtime}",
        f"REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA {schema_q} FROM {runtime}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema_q} TO {runtime}",
        f"REVOKE UPDATE ON ALL SEQUENCES IN SCHEMA {schema_q} FROM {runtime}",
        # Tables the owner makes later (another migration) are the runtime's to use at once.
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner_q} IN SCHEMA {schema_q} "
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {runtime}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner_q} IN SCHEMA {schema_q} GRANT USAGE, SELECT ON SEQUENCES TO {runtime}",
        f"REVOKE INSERT, UPDATE, DELETE ON django_migrations FROM {runtime}",
    ]
    for table in append_only_tables(owner_alias):
        statements.append(f"REVOKE UPDATE, DELETE ON {quote(table)} FROM {runtime}")
        if table in WRITE_ONCE:
            columns = ", ".join(quote(c) for c in WRITE_ONCE[table])
            statements.append(f"GRANT UPDATE ({columns}) ON {quote(table)} TO {runtime}")
    with transaction.atomic(using=owner_alias), owner.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)
    return statements


def after_migrate(sender, using, **kwargs):
    """post_migrate: a migration as the owner (possibly adding tables) re-grants at once (a flush
    sends the signal too, without a plan: nothing to do then)."""
    if kwargs.get("plan") is not None and using == "owner" and "owner" in connections and connections["owner"].vendor == "postgresql":
        owner, runtime = connections["owner"].settings_dict, connections["default"].settings_dict
        if owner["USER"] != runtime["USER"]:
            grant_runtime()

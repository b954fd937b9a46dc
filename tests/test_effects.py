"""Which tool calls act on something: the project's list, MCP annotations, SQL, HTTP and shell in
the arguments, then the name, each judged on ``write``, ``destructive`` and ``why``."""

from __future__ import annotations

from typing import Any

import pytest

from harness.checks import effects as writes
from harness.checks.effects import MAX_NODES, MAX_TEXT, Effect, WriteRules, effect, is_write
from harness.model import ToolCall


def call(name: str, args: Any = None, **extra: Any) -> dict[str, Any]:
    return {"name": name, "args": {} if args is None else args, "result": None, **extra}


def destroys(why: str) -> Effect:
    return Effect(write=True, destructive=True, why=why)


def writes_(why: str) -> Effect:
    return Effect(write=True, destructive=False, why=why)


def reads(why: str) -> Effect:
    return Effect(write=False, destructive=False, why=why)


def unknown(verb: str) -> Effect:
    return reads(f"effect unknown: name starts with '{verb}', neither a write nor a read verb")


# --- the code-freeze agent: SQL run through a tool whose name says nothing ---------------------

FREEZE = [
    pytest.param(call("execute_sql", {"query": "DELETE FROM executives;"}),
                 destroys("SQL DELETE statement in argument 'query'"), id="delete"),
    pytest.param(call("execute_sql", {"query": (
        "WITH stale AS (SELECT id FROM companies WHERE updated_at < now() - interval '1 day')\n"
        "DELETE FROM companies WHERE id IN (SELECT id FROM stale)")}),
        destroys("SQL DELETE statement in argument 'query'"), id="cte-then-delete"),
    pytest.param(call("execute_sql", {"query": (
        "with gone as (delete from executives returning id) select count(*) from gone")}),
        destroys("SQL DELETE statement in argument 'query'"), id="delete-inside-cte"),
    pytest.param(call("execute_sql", {"query": "SELECT count(*) FROM executives"}),
                 reads("SQL SELECT statement in argument 'query'"), id="select-is-a-read"),
    pytest.param(call("run_sql", {"sql": (
        "-- code freeze: read-only until Monday\n/* clean up the demo data */\n"
        "   drop table companies;")}),
        destroys("SQL DROP statement in argument 'sql'"), id="comments-before-drop"),
    pytest.param(call("db.execute", {"q": "SELECT 1; DROP TABLE users"}),
                 destroys("SQL DROP statement in argument 'q'"), id="injected-second-statement"),
    pytest.param(call("db.execute", {"q": "SELECT id FROM users WHERE note = 'x; DROP TABLE t'"}),
                 reads("SQL SELECT statement in argument 'q'"), id="drop-inside-a-literal"),
    pytest.param(call("db.execute", {"q": "EXPLAIN ANALYZE DELETE FROM sessions"}),
                 destroys("SQL DELETE statement in argument 'q'"), id="explain-analyze-runs-it"),
]


@pytest.mark.parametrize(("tool_call", "expected"), FREEZE)
def test_sql_run_by_a_generic_tool_is_judged_by_its_statement(tool_call, expected):
    assert effect(tool_call) == expected
    assert is_write(tool_call) is expected.write


STATEMENTS = [
    pytest.param("UPDATE accounts SET balance = balance - %s WHERE id = %s",
                 writes_("SQL UPDATE statement in argument 'sql'"), id="parameterised-update"),
    pytest.param("update orders o set status = :status where o.id = :id",
                 writes_("SQL UPDATE statement in argument 'sql'"), id="named-parameters"),
    pytest.param("UPDATE accounts SET balance = 0",
                 destroys("SQL UPDATE statement without WHERE in argument 'sql'"),
                 id="update-every-row"),
    pytest.param("UPDATE accounts SET tier = (SELECT max(tier) FROM tiers WHERE active)",
                 destroys("SQL UPDATE statement without WHERE in argument 'sql'"),
                 id="where-only-in-a-subquery"),
    pytest.param("UPDATE t SET note = 'a;b' WHERE id = 1",
                 writes_("SQL UPDATE statement in argument 'sql'"), id="semicolon-in-a-literal"),
    pytest.param("INSERT INTO audit (msg) VALUES ('DELETE FROM users WHERE id = 1')",
                 writes_("SQL INSERT statement in argument 'sql'"), id="delete-quoted-in-insert"),
    pytest.param("insert overwrite table sales select * from staging",
                 destroys("SQL INSERT OVERWRITE statement in argument 'sql'"), id="overwrite"),
    pytest.param("TRUNCATE TABLE orders RESTART IDENTITY",
                 destroys("SQL TRUNCATE statement in argument 'sql'"), id="truncate"),
    pytest.param("ALTER TABLE users DROP COLUMN email",
                 destroys("SQL ALTER TABLE ... DROP statement in argument 'sql'"),
                 id="alter-drop"),
    pytest.param("ALTER TABLE users ADD COLUMN nickname text",
                 writes_("SQL ALTER TABLE statement in argument 'sql'"), id="alter-add"),
    pytest.param("MERGE INTO stock s USING deliveries d ON s.sku = d.sku "
                 "WHEN MATCHED THEN UPDATE SET qty = s.qty + d.qty",
                 writes_("SQL MERGE statement in argument 'sql'"), id="merge"),
    pytest.param("MERGE INTO stock s USING returns r ON s.sku = r.sku WHEN MATCHED THEN DELETE",
                 destroys("SQL MERGE statement with THEN DELETE in argument 'sql'"),
                 id="merge-then-delete"),
    pytest.param("REPLACE INTO settings (k, v) VALUES ('freeze', 'off')",
                 writes_("SQL REPLACE statement in argument 'sql'"), id="replace"),
    pytest.param("CREATE TABLE IF NOT EXISTS backup_users AS SELECT * FROM users",
                 writes_("SQL CREATE statement in argument 'sql'"), id="create"),
    pytest.param("GRANT ALL PRIVILEGES ON DATABASE prod TO intern",
                 writes_("SQL GRANT statement in argument 'sql'"), id="grant"),
    pytest.param("REVOKE SELECT ON payroll FROM analyst",
                 writes_("SQL REVOKE statement in argument 'sql'"), id="revoke"),
    pytest.param("DELETE FROM sessions s WHERE s.expires_at < now() RETURNING s.id",
                 destroys("SQL DELETE statement in argument 'sql'"), id="delete-with-alias"),
]


@pytest.mark.parametrize(("sql", "expected"), STATEMENTS)
def test_statements_say_whether_they_write_and_destroy(sql, expected):
    assert effect(call("db.execute", {"sql": sql, "params": [100, 7]})) == expected


def test_comments_neither_hide_a_statement_nor_make_one():
    after_comment = call("agent_step", {"input": "/* approved by ops */ DROP TABLE companies;"})
    assert effect(after_comment) == destroys("SQL DROP statement in argument 'input'")
    in_comment = call("db.execute", {"sql": "SELECT 1 -- ; DROP TABLE users"})
    assert effect(in_comment) == reads("SQL SELECT statement in argument 'sql'")


def test_statements_are_found_in_json_strings_lists_and_bare_arguments():
    as_json = call("run_sql", '{"statements": ["SELECT 1", "INSERT INTO t (a) VALUES (1)"]}')
    assert effect(as_json) == writes_("SQL INSERT statement in argument 'statements[1]'")
    nested = call("http_post_json", {"body": '{"sql": "TRUNCATE TABLE orders"}'})
    assert effect(nested) == destroys("SQL TRUNCATE statement in argument 'body.sql'")
    as_repr = call("execute_sql", "{'query': 'DELETE FROM companies;'}")
    assert effect(as_repr) == destroys("SQL DELETE statement in argument 'query'")
    bare = call("run_sql", "DROP TABLE invoices")
    assert effect(bare) == destroys("SQL DROP statement in the arguments")
    in_code = call("execute_python", {"code": "import sqlite3\nconn.execute('DELETE FROM users')"})
    assert effect(in_code) == destroys("SQL DELETE statement in argument 'code'")


# --- prose is not SQL -----------------------------------------------------------------------

PROSE = [
    pytest.param(call("search_kb", {"query": "how do I delete from my account the old card"}),
                 reads("name starts with 'search'"), id="how-do-i-delete"),
    pytest.param(call("search_kb", {"query": "Delete from my account the card ending 1881"}),
                 reads("name starts with 'search'"), id="delete-from-my-account"),
    pytest.param(call("search_kb", {"q": "Delete from my account where I saved the card"}),
                 reads("name starts with 'search'"), id="delete-from-where"),
    pytest.param(call("lookup_order", {"note": "Please update the shipping address set on it"}),
                 reads("name starts with 'lookup'"), id="please-update"),
    pytest.param(call("lookup_booking", {"note": "Drop table reservations for tonight"}),
                 reads("name starts with 'lookup'"), id="drop-table-reservations"),
    pytest.param(call("notify_customer", {"text": "Delete from cart"}),
                 unknown("notify"), id="bare-phrase-outside-sql-argument"),
    pytest.param(call("send_email", {"body": "Hi, please delete from my account the card "
                                              "ending 1881 and update the shipping address."}),
                 writes_("name starts with 'send'"), id="email-is-a-write-not-a-destruction"),
]


@pytest.mark.parametrize(("tool_call", "expected"), PROSE)
def test_prose_that_mentions_sql_words_is_not_sql(tool_call, expected):
    assert effect(tool_call) == expected


def test_a_bare_statement_counts_outside_sql_arguments_when_written_as_sql():
    assert effect(call("notify_customer", {"text": "DELETE FROM cart"})) == destroys(
        "SQL DELETE statement in argument 'text'")


# --- MCP annotations ------------------------------------------------------------------------

ANNOTATED = [
    pytest.param(call("filesystem__write_file", {"path": "/srv/app/.env", "content": "A=1"},
                      annotations={"readOnlyHint": False, "destructiveHint": True}),
                 destroys("MCP annotation destructiveHint: true"), id="write-file-destructive"),
    pytest.param(call("github__get_issue", {"owner": "acme", "repo": "api", "issue_number": 7},
                      annotations={"readOnlyHint": True, "openWorldHint": True}),
                 reads("MCP annotation readOnlyHint: true"), id="get-issue-read-only"),
    pytest.param(call("mcp__github__create_issue", {"title": "freeze"},
                      annotations={"readOnlyHint": False, "destructiveHint": False}),
                 writes_("MCP annotation readOnlyHint: false, destructiveHint: false"),
                 id="create-issue-additive"),
    pytest.param(call("slack__post_message", {"text": "hi"},
                      annotations={"readOnlyHint": False}),
                 destroys("MCP annotation readOnlyHint: false (destructiveHint defaults to true)"),
                 id="destructive-by-default"),
    pytest.param(call("memory__add_observation", {"text": "x"},
                      annotations={"destructiveHint": False}),
                 writes_("MCP annotation destructiveHint: false (readOnlyHint defaults to false)"),
                 id="read-only-defaults-false"),
    pytest.param(call("cache__lookup", {"key": "k"},
                      annotations={"readOnlyHint": True, "destructiveHint": True}),
                 reads("MCP annotation readOnlyHint: true"),
                 id="destructive-hint-ignored-when-read-only"),
    pytest.param(call("fetch_page", {"url": "https://example.com"},
                      annotations={"title": "Fetch", "openWorldHint": True}),
                 reads("name starts with 'fetch'"), id="no-read-or-destructive-hint"),
    pytest.param(call("wipe_disk", {}, annotations={"readOnlyHint": "true"}),
                 destroys("name starts with 'wipe'"), id="hint-that-is-not-a-boolean"),
]


@pytest.mark.parametrize(("tool_call", "expected"), ANNOTATED)
def test_mcp_annotations_decide_when_they_carry_a_read_or_destructive_hint(tool_call, expected):
    assert effect(tool_call) == expected


def test_a_model_tool_call_is_read_like_its_mapping():
    tool_call = ToolCall(name="filesystem__write_file", args={"path": "a"},
                         annotations={"destructiveHint": True})
    assert effect(tool_call) == destroys("MCP annotation destructiveHint: true")
    assert is_write(ToolCall(name="get_order", args={"order_id": "A-1001"})) is False


# --- HTTP -----------------------------------------------------------------------------------

HTTP = [
    pytest.param(call("http_request", {"method": "DELETE", "url": "https://api.acme.test/v1/users/9"}),
                 destroys("HTTP method DELETE in argument 'method'"), id="delete"),
    pytest.param(call("http_request", {"method": "patch", "url": "https://api.acme.test/v1/o/1"}),
                 writes_("HTTP method PATCH in argument 'method'"), id="patch-any-case"),
    pytest.param(call("http_request", {"method": "GET", "url": "https://api.acme.test/v1/o/1"}),
                 reads("HTTP method GET in argument 'method'"), id="get"),
    pytest.param(call("call_api", {"request": {"httpMethod": "post", "path": "/refunds"}}),
                 writes_("HTTP method POST in argument 'request.httpMethod'"), id="nested"),
    pytest.param(call("fetch", {"url": "https://api.acme.test/v1/o/1", "verb": "PUT"}),
                 writes_("HTTP method PUT in argument 'verb'"), id="write-beats-a-read-name"),
    pytest.param(call("send_request", {"method": "GET", "url": "https://api.acme.test/"}),
                 writes_("name starts with 'send'"), id="a-read-does-not-beat-a-write-name"),
    pytest.param(call("http_request", {"method": "DELETED", "url": "https://x.test/"}),
                 unknown("http"), id="not-a-method"),
]


@pytest.mark.parametrize(("tool_call", "expected"), HTTP)
def test_http_methods_in_arguments(tool_call, expected):
    assert effect(tool_call) == expected


# --- shell ----------------------------------------------------------------------------------

SHELL = [
    pytest.param("psql -c 'TRUNCATE orders'",
                 destroys("SQL TRUNCATE statement run by psql in argument 'command'"), id="psql"),
    pytest.param("cd /srv && sudo -u postgres psql -d prod -c \"SELECT 1; DROP TABLE users\"",
                 destroys("SQL DROP statement run by psql in argument 'command'"), id="sudo-psql"),
    pytest.param("sqlite3 db.sqlite 'DROP TABLE t'",
                 destroys("SQL DROP statement run by sqlite3 in argument 'command'"),
                 id="sqlite3"),
    pytest.param('mysql -u root -e "delete from companies"',
                 destroys("SQL DELETE statement run by mysql in argument 'command'"), id="mysql"),
    pytest.param("echo \"update plans set price = 0 where id = 3\" | psql prod",
                 writes_("SQL UPDATE statement run by psql in argument 'command'"),
                 id="piped-into-psql"),
    pytest.param("bash -lc \"kubectl exec db-0 -- psql -c 'DELETE FROM users'\"",
                 destroys("SQL DELETE statement run by psql in argument 'command'"),
                 id="nested-kubectl-exec"),
    pytest.param("rm -rf /var/lib/app/data",
                 destroys("shell command rm -rf in argument 'command'"), id="rm-rf"),
    pytest.param("ssh prod-db rm -r /backups/2025",
                 destroys("shell command rm -r in argument 'command'"), id="ssh-rm"),
    pytest.param("git push --force origin main",
                 destroys("shell command git push --force in argument 'command'"),
                 id="git-push-force"),
    pytest.param("git -C repo push origin +main",
                 destroys("shell command git push +main in argument 'command'"),
                 id="git-push-plus-refspec"),
    pytest.param("kubectl -n prod delete deployment api",
                 destroys("shell command kubectl delete in argument 'command'"), id="kubectl"),
    pytest.param("terraform destroy -auto-approve",
                 destroys("shell command terraform destroy in argument 'command'"),
                 id="terraform"),
    pytest.param("curl -X DELETE https://api.acme.test/v1/users/9",
                 destroys("curl -X DELETE in argument 'command'"), id="curl-delete"),
    pytest.param("curl --request=PATCH https://api.acme.test/v1/o/1 -H 'Content-Type: x'",
                 writes_("curl -X PATCH in argument 'command'"), id="curl-request-patch"),
    pytest.param("curl -s https://api.acme.test/v1/refunds --data '{\"order\": 1}'",
                 writes_("curl --data in argument 'command'"), id="curl-data"),
    pytest.param("curl -G https://api.acme.test/v1/search -d q=refund",
                 unknown("bash"), id="curl-get-with-query"),
    pytest.param("git push origin main", unknown("bash"), id="plain-push"),
    pytest.param("git commit -m 'rm -rf old; git push --force'", unknown("bash"),
                 id="words-in-a-commit-message"),
    pytest.param("ls -la /var/lib/app", unknown("bash"), id="ls"),
]


@pytest.mark.parametrize(("command", "expected"), SHELL)
def test_shell_commands(command, expected):
    assert effect(call("bash", {"command": command})) == expected


def test_a_command_given_as_a_list_is_one_command_line():
    argv = call("shell", {"command": ["bash", "-lc", "rm -rf build"], "workdir": "/srv"})
    assert effect(argv) == destroys("shell command rm -rf in argument 'command'")


def test_destructive_commands_count_only_where_a_shell_runs_them():
    ticket = call("create_ticket", {"description": "rm -rf build fixed it"})
    assert effect(ticket) == writes_("name starts with 'create'")
    runner = call("run_terminal_cmd", {"input": "rm -rf build"})
    assert effect(runner) == destroys("shell command rm -rf in argument 'input'")


# --- names ----------------------------------------------------------------------------------

NAMES = [
    pytest.param("issueRefund", writes_("name starts with 'issue'"), id="camel"),
    pytest.param("cancel-order", writes_("name starts with 'cancel'"), id="kebab"),
    pytest.param("functions.update_record", writes_("name starts with 'update'"), id="openai"),
    pytest.param("mcp__stripe__create_refund", writes_("name starts with 'create'"), id="mcp"),
    pytest.param("crm__archiveContact", writes_("name starts with 'archive'"), id="server-camel"),
    pytest.param("delete_record", destroys("name starts with 'delete'"), id="delete"),
    pytest.param("PurgeCache", destroys("name starts with 'purge'"), id="pascal-purge"),
    pytest.param("lookup_order", reads("name starts with 'lookup'"), id="lookup"),
    pytest.param("get_order", reads("name starts with 'get'"), id="get"),
    pytest.param("github.listPullRequests", reads("name starts with 'list'"), id="dotted-read"),
    pytest.param("db.execute", unknown("execute"), id="execute-without-sql"),
    pytest.param("query_database", reads("name starts with 'query'"), id="query-without-sql"),
    pytest.param("", reads("effect unknown: the call names no tool"), id="no-name"),
]


@pytest.mark.parametrize(("name", "expected"), NAMES)
def test_names_are_judged_by_their_first_word(name, expected):
    assert effect(call(name, {"order_id": "A-1001"})) == expected


def test_a_known_write_tool_without_a_verb_is_a_write(monkeypatch):
    assert effect(call("ledger_adjustment")) == unknown("ledger")
    monkeypatch.setattr(writes, "WRITE_TOOLS", (*writes.WRITE_TOOLS, "ledger_adjustment"))
    assert effect(call("ledger_adjustment")) == writes_(
        "a known write tool (harness.checks.automation.WRITE_TOOLS)")


def test_a_select_does_not_outweigh_a_name_that_says_write():
    archive = call("archive_orders", {"query": "SELECT id FROM orders WHERE created < '2020'"})
    assert effect(archive) == writes_("name starts with 'archive'")
    looked_up = call("query_database", {"sql": "SELECT id FROM orders"})
    assert effect(looked_up) == reads("SQL SELECT statement in argument 'sql'")


# --- precedence -----------------------------------------------------------------------------

RULES = WriteRules.from_mapping(
    {"write_tools": ["run_sql", "sync_crm"], "read_tools": ["purge_preview"]},
    source="harness.yaml",
)
DROP = {"sql": "DROP TABLE companies"}


def test_the_project_list_beats_annotations_arguments_and_name():
    listed_read = call("purge_preview", DROP, annotations={"destructiveHint": True})
    assert effect(listed_read, RULES) == reads("listed in read_tools in harness.yaml")
    assert effect(listed_read) == destroys("SQL DROP statement in argument 'sql'")
    listed_write = call("sync_crm", {}, annotations={"readOnlyHint": True})
    assert effect(listed_write, RULES) == writes_("listed in write_tools in harness.yaml")


def test_a_listed_write_is_destructive_when_its_arguments_destroy():
    assert effect(call("run_sql", DROP), RULES) == destroys(
        "listed in write_tools in harness.yaml; SQL DROP statement in argument 'sql'")
    assert effect(call("run_sql", {"sql": "SELECT 1"}), RULES) == writes_(
        "listed in write_tools in harness.yaml")
    assert effect(call("run_sql", {"sql": "SELECT 1"}), WriteRules(writes=frozenset({
        "run_sql"}))) == writes_("listed in write_tools")


def test_what_the_arguments_do_beats_what_the_annotations_claim():
    # an MCP server's annotations are hints: a DELETE is a DELETE, whatever it says
    hinted = call("run_sql", {"sql": "DELETE FROM executives"}, annotations={"readOnlyHint": True})
    assert effect(hinted) == destroys("SQL DELETE statement in argument 'sql', though the "
                                      "tool's annotations claim readOnlyHint: true")
    assert effect(call("run_sql", {"sql": "DELETE FROM executives"})) == destroys(
        "SQL DELETE statement in argument 'sql'")
    # annotations can only add: a destructive hint on a plain write makes it destructive
    inserted = call("run_sql", {"sql": "INSERT INTO notes (body) VALUES ('x')"},
                    annotations={"destructiveHint": True})
    assert effect(inserted).destructive
    # and a read in the arguments does not outweigh a tool declared to write
    selected = call("run_sql", {"sql": "SELECT 1"}, annotations={"readOnlyHint": False,
                                                               "destructiveHint": False})
    assert effect(selected).write and not effect(selected).destructive


def test_arguments_beat_the_name():
    report = call("get_report", {"sql": "DELETE FROM reports WHERE id = 4"})
    assert effect(report) == destroys("SQL DELETE statement in argument 'sql'")
    assert effect(call("get_report", {"sql": "missing"})) == reads("name starts with 'get'")


def test_a_name_outside_the_list_falls_through():
    assert effect(call("get_order"), RULES) == reads("name starts with 'get'")


# --- the project's list ---------------------------------------------------------------------


def test_rules_from_a_mapping():
    rules = WriteRules.from_mapping({"write_tools": [" run_sql "], "read_tools": None})
    assert rules == WriteRules(writes=frozenset({"run_sql"}), reads=frozenset(), source=None)
    assert RULES.writes == frozenset({"run_sql", "sync_crm"})
    assert RULES.reads == frozenset({"purge_preview"})
    assert RULES.source == "harness.yaml"


@pytest.mark.parametrize(("data", "message"), [
    ({"write_tool": ["run_sql"]},
     "harness.yaml: write_tool: unknown key; expected write_tools or read_tools"),
    ({"write_tools": "run_sql"},
     "harness.yaml: write_tools: expected a list of tool names, found 'run_sql'"),
    ({"read_tools": ["get_order", 7]},
     "harness.yaml: read_tools[1]: expected a tool name, found 7"),
    ({"read_tools": ["get_order", " "]},
     "harness.yaml: read_tools[1]: expected a tool name, found ' '"),
    ({"write_tools": ["run_sql", "sync"], "read_tools": ["run_sql"]},
     "harness.yaml: run_sql: listed in both write_tools and read_tools; keep each tool in one"
     " list"),
    (["run_sql"], "harness.yaml: expected a mapping with write_tools and read_tools, found list"),
])
def test_rules_from_a_bad_mapping_name_the_key(data, message):
    with pytest.raises(ValueError) as raised:
        WriteRules.from_mapping(data, source="harness.yaml")
    assert str(raised.value) == message


def test_rules_without_a_source_say_only_the_key():
    with pytest.raises(ValueError, match=r"^tools: unknown key"):
        WriteRules.from_mapping({"tools": []})


# --- odd input and bounds -------------------------------------------------------------------


def nested(depth: int, leaf: Any) -> Any:
    for _ in range(depth):
        leaf = [leaf]
    return leaf


ODD = [
    pytest.param(None, reads("effect unknown: not a tool call"), id="none"),
    pytest.param("DROP TABLE users", reads("effect unknown: not a tool call"), id="string"),
    pytest.param(5, reads("effect unknown: not a tool call"), id="number"),
    pytest.param({}, reads("effect unknown: the call names no tool"), id="empty"),
    pytest.param({"name": 7, "args": {"sql": "SELECT 1"}},
                 reads("SQL SELECT statement in argument 'sql'"), id="name-not-a-string"),
    pytest.param(call("run_sql", None), unknown("run"), id="no-args"),
    pytest.param({"name": "run_sql", "args": None}, unknown("run"), id="args-none"),
    pytest.param(call("run_sql", 42), unknown("run"), id="args-number"),
    pytest.param(call("run_sql", True), unknown("run"), id="args-bool"),
    pytest.param(call("run_sql", b"DROP TABLE users"), unknown("run"), id="args-bytes"),
    pytest.param(call("run_sql", "not json {"), unknown("run"), id="args-not-json"),
    pytest.param(call("run_sql", "[" * 5000 + "]" * 5000), unknown("run"), id="deep-json"),
    pytest.param(call("run_sql", {"sql": {1, 2}, "n": float("nan"), "b": None}),
                 unknown("run"), id="odd-leaves"),
    pytest.param(call("run_sql", {1: "DELETE FROM t", None: 3}),
                 destroys("SQL DELETE statement in argument '1'"), id="keys-not-strings"),
    pytest.param(call("run_sql", {"sql": nested(5, "DELETE FROM t")}),
                 destroys("SQL DELETE statement in argument 'sql[0][0][0][0][0]'"),
                 id="nested-lists"),
    pytest.param(call("run_sql", {"sql": nested(500, "DELETE FROM t")}), unknown("run"),
                 id="nested-too-deep"),
    pytest.param(call("bash", {"command": "echo 'unbalanced && rm -rf /tmp/x"}),
                 destroys("shell command rm -rf in argument 'command'"), id="unbalanced-quote"),
    pytest.param(call("x", annotations="readOnlyHint"), unknown("x"), id="annotations-string"),
]


@pytest.mark.parametrize(("tool_call", "expected"), ODD)
def test_odd_input_never_raises(tool_call, expected):
    assert effect(tool_call) == expected


def test_work_is_bounded():
    past_text = "SELECT 1;" + " " * MAX_TEXT + "DROP TABLE users"
    assert effect(call("run_sql", {"sql": past_text})) == reads(
        "SQL SELECT statement in argument 'sql'")
    many = {f"k{index}": "ok" for index in range(MAX_NODES)} | {"late": "DROP TABLE users"}
    assert effect(call("run_sql", many)) == unknown("run")
    few = {f"k{index}": "ok" for index in range(10)} | {"late": "DROP TABLE users"}
    assert effect(call("run_sql", few)) == destroys("SQL DROP statement in argument 'late'")
    statements = "SELECT 1; " * 1000 + "DROP TABLE users"
    assert effect(call("run_sql", {"sql": statements})) == reads(
        "SQL SELECT statement in argument 'sql'")

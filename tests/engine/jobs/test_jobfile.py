"""The YAML job file: the model, defaults, ``${VAR}`` expansion, secrets and errors with lines
(entra-behaviour.md 2.1-2.3, 2.5-2.7, 2.14, 3.1)."""

from __future__ import annotations

import pickle
import textwrap
from pathlib import Path

import pytest

from provisor.engine.jobs import (
    ApplyMapping,
    Assignment,
    Job,
    JobFileError,
    MappingConfig,
    MappingObject,
    MappingType,
    PatchDialect,
    ScopeMode,
    Secret,
    SmtpConfig,
    SourceType,
    load_job_file,
    parse_job,
)
from provisor.engine.scoping import ScopingClause, ScopingOperator, evaluate

DATA = Path(__file__).resolve().parents[2] / "data" / "jobs"
ENV = {"DIRECTORY_TOKEN": "dir-token-7f3a", "APP_TOKEN": "app-token-9c1e", "SMTP_PASSWORD": "smtp-pw-42"}
SECRETS = tuple(ENV.values())

# Eight lines; tests append from line 9 on.
BASE = """\
name: app
source:
  type: scim
  url: http://dir.example.com/scim/v2
  token: ${DIRECTORY_TOKEN}
target:
  url: https://app.example.com/scim/v2
  token: ${APP_TOKEN}
"""


def parse(text: str, env: dict[str, str] | None = None, base_dir: Path | None = None) -> Job:
    return parse_job(text, ENV if env is None else env, source_name="job.yaml", base_dir=base_dir)


def with_base(extra: str) -> str:
    return BASE + textwrap.dedent(extra)


def error(text: str, env: dict[str, str] | None = None) -> JobFileError:
    with pytest.raises(JobFileError) as info:
        parse(text, env)
    message = str(info.value)
    for secret in SECRETS:
        assert secret not in message
    return info.value


# -- the documented example --------------------------------------------------------------------


def test_the_clarizen_example_loads_as_written() -> None:
    path = DATA / "clarizen-one.yaml"
    job = load_job_file(path, ENV)
    assert job.name == "clarizen-one"
    assert job.source.type is SourceType.SCIM
    assert job.source.url == "http://127.0.0.1:8000/scim/v2"
    assert job.source.token == Secret("dir-token-7f3a")
    assert job.source.token is not None and job.source.token.reveal() == "dir-token-7f3a"
    assert job.source.path is None
    assert job.source.options == ()
    assert job.target.url == "http://127.0.0.1:8000/scim/v2"
    assert job.target.token.reveal() == "app-token-9c1e"
    assert job.target.patch_dialect is PatchDialect.ENTRA
    assert job.target.concurrency == 8
    assert job.target.timeout_seconds == 30.0
    assert job.template == "clarizen-one"
    assert job.mappings == ()
    assert job.scope.mode is ScopeMode.ASSIGNED
    assert job.scope.assignments == (
        Assignment(role="User", group="Engineering"),
        Assignment(role="User", user="ada@example.com"),
    )
    assert job.scope.skip_default_access is True  # clarizen-one template (2.2 conflict note)
    assert job.scope.user_filters.filters == ()
    assert job.scope.group_filters.filters == ()
    assert job.state == f"sqlite:///{(path.parent.resolve() / 'clarizen-one.state.db').as_posix()}"
    assert job.interval_minutes == 40
    assert job.settings.skip_out_of_scope_deletions is False
    assert job.settings.deletion_threshold == 500
    assert job.notifications is not None
    assert job.notifications.emails == ("it-ops@example.com",)
    assert job.notifications.smtp == SmtpConfig(host="127.0.0.1", port=8025)
    assert job.notifications.sender is None
    assert job.notifications.notify_on_failure is True


def test_every_section_with_non_default_values() -> None:
    path = DATA / "full.yaml"
    job = load_job_file(path, ENV)
    folder = path.parent.resolve()
    assert job.name == "hr-to-app"
    assert job.source.type is SourceType.CSV
    assert job.source.path == folder / "exports" / "users.csv"
    assert job.source.url is None and job.source.token is None
    assert job.source.options == (("delimiter", ";"), ("anchor", "employeeId"))
    assert job.source.option("delimiter") == ";"
    assert job.source.option("quote", '"') == '"'
    assert job.target.url == "https://app.example.com/scim/v2"
    assert job.target.patch_dialect is PatchDialect.AAD_OPT_SCIM_062020
    assert job.target.concurrency == 4  # ${CONCURRENCY:-4}
    assert job.target.timeout_seconds == 12.5
    assert job.template == "scim-default"
    assert job.mappings == (
        MappingConfig("userName", MappingType.DIRECT, source="userPrincipalName", matching_precedence=1),
        MappingConfig("externalId", MappingType.DIRECT, source="employeeId", matching_precedence=2),
        MappingConfig(
            "title", MappingType.CONSTANT, constant="Engineer", apply=ApplyMapping.ONLY_DURING_CREATION
        ),
        MappingConfig(
            "displayName",
            MappingType.EXPRESSION,
            expression='Join(" ", [givenName], [surname])',
            default_value="Unknown",
        ),
        MappingConfig("nickName", MappingType.NONE, default_value="none"),
        MappingConfig("displayName", MappingType.DIRECT, object=MappingObject.GROUP, source="displayName"),
    )
    assert job.scope.mode is ScopeMode.ALL
    assert job.scope.assignments == ()
    assert job.scope.skip_default_access is True
    users = job.scope.user_filters.filters
    assert [f.clauses for f in users] == [
        (
            ScopingClause("department", ScopingOperator.EQUALS, "Engineering"),
            ScopingClause("jobTitle", ScopingOperator.IS_NOT_NULL),
        ),
        (ScopingClause("employeeId", ScopingOperator.REGEX_MATCH, "^[0-9]+$"),),
    ]
    groups = job.scope.group_filters.filters
    assert [f.clauses for f in groups] == [(ScopingClause("displayName", ScopingOperator.ENDS_WITH, "-app"),)]
    assert job.state == "postgresql+psycopg://provisor@db.example.com/provisor"
    assert job.interval_minutes == 15
    assert job.settings.skip_out_of_scope_deletions is True
    assert job.settings.deletion_threshold == 0
    assert job.notifications is not None
    assert job.notifications.emails == ("it-ops@example.com", "security@example.com")
    assert job.notifications.smtp == SmtpConfig(
        host="mail.example.com", port=465, tls=True, user="provisor", password=Secret("smtp-pw-42")
    )
    assert job.notifications.sender == "provisor@example.com"
    assert job.notifications.notify_on_failure is False
    assert job.logs.retention_days == 7


def test_the_filters_of_a_job_evaluate_as_or_of_ands() -> None:
    filters = load_job_file(DATA / "full.yaml", ENV).scope.user_filters
    assert evaluate(filters, {"department": "Engineering", "jobTitle": "Dev"}).in_scope
    assert not evaluate(filters, {"department": "Engineering"}).in_scope
    assert evaluate(filters, {"department": "Sales", "employeeId": "0042"}).in_scope
    assert not evaluate(filters, {"department": "Sales", "employeeId": "E42"}).in_scope


# -- defaults --------------------------------------------------------------------------------


def test_defaults_of_a_minimal_job(tmp_path: Path) -> None:
    job = parse(BASE, base_dir=tmp_path)
    assert job.template is None
    assert job.mappings == ()
    assert job.scope.mode is ScopeMode.ASSIGNED
    assert job.scope.assignments == ()
    assert job.scope.skip_default_access is False
    assert job.scope.user_filters.filters == () and job.scope.group_filters.filters == ()
    assert job.state == f"sqlite:///{(tmp_path / 'app.state.db').as_posix()}"
    assert job.interval_minutes == 40  # 2.5
    assert job.settings.skip_out_of_scope_deletions is False  # 2.6
    assert job.settings.deletion_threshold == 500  # 2.7
    assert job.logs.retention_days == 30  # 2.12
    assert job.notifications is None
    assert job.target.patch_dialect is PatchDialect.ENTRA
    assert job.target.concurrency == 8
    assert job.target.timeout_seconds == 30.0


@pytest.mark.parametrize(
    ("template", "scope", "expected"),
    [
        ("clarizen-one", "", True),
        ("scim-default", "", False),
        (None, "", False),
        ("clarizen-one", "scope:\n  skip_default_access: false\n", False),
        ("clarizen-one", "scope:\n  mode: assigned\n", True),
        ("scim-default", "scope:\n  skip_default_access: yes\n", True),
    ],
)
def test_skip_default_access_defaults_by_template(template: str | None, scope: str, expected: bool) -> None:
    text = BASE + (f"template: {template}\n" if template else "") + scope
    assert parse(text).scope.skip_default_access is expected


def test_an_assignment_without_a_role_gets_default_access() -> None:
    job = parse(with_base("scope:\n  assignments:\n    - user: ada@example.com\n"))
    assert job.scope.assignments == (Assignment(role="Default Access", user="ada@example.com"),)


def test_choices_are_case_and_separator_insensitive() -> None:
    job = parse(
        with_base("""\
        template: Clarizen_One
        scope: {mode: ALL}
        mappings:
          - {target: title, type: constant, constant: x, apply: only during creation, object: USER}
        """).replace("  patch", "patch")
    )
    assert job.template == "clarizen-one"
    assert job.scope.mode is ScopeMode.ALL
    assert job.mappings[0].type is MappingType.CONSTANT
    assert job.mappings[0].apply is ApplyMapping.ONLY_DURING_CREATION
    assert job.mappings[0].object is MappingObject.USER


def test_scalars_are_typed_by_their_field_not_by_yaml_1_1() -> None:
    job = parse(
        BASE.replace("name: app", "name: yes")
        + "mappings:\n  - {target: title, constant: no}\n  - {target: nickName, constant: 007}\n"
    )
    assert job.name == "yes"
    assert job.mappings[0].constant == "no"
    assert job.mappings[1].constant == "007"


def test_operator_names_in_the_job_file_are_tolerant_and_values_may_be_numbers() -> None:
    job = parse(
        with_base("""\
        scope:
          filters:
            users:
              - - {attribute: level, operator: greater_than_or_equals, value: 10}
                - {attribute: accountEnabled, operator: is_true}
                - {attribute: department, operator: not_equals, value: HR}
        """)
    )
    assert job.scope.user_filters.filters[0].clauses == (
        ScopingClause("level", ScopingOperator.GREATER_THAN_OR_EQUALS, "10"),
        ScopingClause("accountEnabled", ScopingOperator.IS_TRUE),
        ScopingClause("department", ScopingOperator.NOT_EQUALS, "HR"),
    )


# -- state URL -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("sqlite:///db/state.db", "sqlite:///{base}/db/state.db"),
        ("sqlite:///state.db?mode=rwc", "sqlite:///{base}/state.db?mode=rwc"),
        ("sqlite+pysqlite:///state.db", "sqlite+pysqlite:///{base}/state.db"),
        ("sqlite:////var/lib/provisor/state.db", "sqlite:////var/lib/provisor/state.db"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
        ("sqlite://", "sqlite://"),
        ("postgresql://db.example.com/provisor", "postgresql://db.example.com/provisor"),
    ],
)
def test_relative_sqlite_paths_resolve_against_the_job_folder(
    tmp_path: Path, state: str, expected: str
) -> None:
    job = parse(BASE + f"state: '{state}'\n", base_dir=tmp_path)
    assert job.state == expected.format(base=tmp_path.as_posix())


def test_without_a_base_dir_relative_paths_stay_relative() -> None:
    assert parse(BASE + "state: sqlite:///state.db\n").state == "sqlite:///state.db"


def test_a_relative_csv_path_resolves_against_the_job_file_folder(tmp_path: Path) -> None:
    text = BASE.replace(
        "  type: scim\n  url: http://dir.example.com/scim/v2\n  token: ${DIRECTORY_TOKEN}\n",
        "  type: jsonl\n  path: users.jsonl\n",
    )
    (tmp_path / "job.yaml").write_text(text, encoding="utf-8")
    job = load_job_file(tmp_path / "job.yaml", ENV)
    assert job.source.type is SourceType.JSONL
    assert job.source.path == tmp_path.resolve() / "users.jsonl"


# -- ${VAR} expansion ------------------------------------------------------------------------


def test_variables_expand_from_the_given_environment_only() -> None:
    job = parse(BASE, {"DIRECTORY_TOKEN": "a", "APP_TOKEN": "b"})
    assert job.source.token == Secret("a")
    assert job.target.token == Secret("b")


@pytest.mark.parametrize(
    ("env", "expected"),
    [({}, "fallback"), ({"NAME": ""}, "fallback"), ({"NAME": "set"}, "set")],
)
def test_default_values_apply_when_unset_or_empty(env: dict[str, str], expected: str) -> None:
    text = with_base("mappings:\n  - {target: title, constant: '${NAME:-fallback}'}\n")
    assert parse(text, {**ENV, **env}).mappings[0].constant == expected


def test_a_default_may_be_empty_and_a_set_empty_variable_is_kept() -> None:
    text = with_base("mappings:\n  - {target: title, constant: 'a${NONE:-}b${EMPTY}c'}\n")
    assert parse(text, {**ENV, "EMPTY": ""}).mappings[0].constant == "abc"


def test_double_dollar_brace_is_a_literal_and_other_dollars_are_kept() -> None:
    text = with_base("mappings:\n  - {target: title, constant: 'cost $5 $${HOME} $$ $'}\n")
    assert parse(text).mappings[0].constant == "cost $5 ${HOME} $$ $"


def test_variables_feed_integer_and_boolean_fields() -> None:
    text = with_base("""\
    interval_minutes: ${INTERVAL:-20}
    settings:
      skip_out_of_scope_deletions: ${SKIP}
      deletion_threshold: ${THRESHOLD}
    """)
    job = parse(text, {**ENV, "SKIP": "True", "THRESHOLD": "25"})
    assert job.interval_minutes == 20
    assert job.settings.skip_out_of_scope_deletions is True
    assert job.settings.deletion_threshold == 25


def test_an_unset_variable_names_the_variable_line_and_column() -> None:
    err = error(BASE, {"DIRECTORY_TOKEN": "x"})
    assert str(err) == "job.yaml:8: ${APP_TOKEN} is not set in the environment"
    assert (err.line, err.column) == (8, 10)


def test_an_unset_variable_inside_a_quoted_string_points_at_the_reference() -> None:
    err = error(with_base('mappings:\n  - target: title\n    constant: "Team ${TEAM} lead"\n'))
    assert str(err) == "job.yaml:11: ${TEAM} is not set in the environment"
    assert (err.line, err.column) == (11, 21)


def test_an_unset_variable_inside_a_literal_block_names_its_own_line() -> None:
    text = with_base("""\
    mappings:
      - target: displayName
        expression: |
          Join(" ",
            "${PREFIX}", [surname])
    """)
    assert str(error(text)) == "job.yaml:13: ${PREFIX} is not set in the environment"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("${1ABC}", "invalid variable reference ${1ABC}"),
        ("${}", "invalid variable reference ${}"),
        ("${OPEN", "unterminated ${"),
        ("${A:-${B}}", "nested ${...} in a default is not supported"),
    ],
)
def test_malformed_references_are_errors(value: str, message: str) -> None:
    err = error(with_base(f"mappings:\n  - {{target: title, constant: '{value}'}}\n"))
    assert err.line == 10
    assert message in str(err)


# -- secrets ---------------------------------------------------------------------------------


def test_secrets_never_show_in_repr_or_str() -> None:
    secret = Secret("hunter2")
    assert repr(secret) == str(secret) == f"{secret}" == "***"
    assert secret.reveal() == "hunter2"
    assert secret == Secret("hunter2") and secret != Secret("other")
    assert hash(secret) == hash(Secret("hunter2"))
    assert pickle.loads(pickle.dumps(secret)) == secret
    job = load_job_file(DATA / "full.yaml", ENV)
    text = repr(job) + str(job) + repr(load_job_file(DATA / "clarizen-one.yaml", ENV))
    for value in SECRETS:
        assert value not in text
    assert "token=***" in text and "password=***" in text


def test_a_url_from_the_environment_is_not_echoed_in_errors() -> None:
    text = BASE.replace("url: https://app.example.com/scim/v2", "url: ${APP_URL}")
    err = error(text, {**ENV, "APP_URL": "ftp://admin:hunter2@app.example.com"})
    assert str(err) == "job.yaml:7: target.url must be a http/https URL (got '${APP_URL}')"
    assert "hunter2" not in str(err)


def test_a_password_written_in_a_url_is_masked_in_errors() -> None:
    text = with_base("notifications:\n  email: a@example.com\n  smtp: smtp://ops:hunter2@mail:notaport\n")
    err = error(text)
    assert str(err) == "job.yaml:11: notifications.smtp is not a valid URL (got 'smtp://***@mail:notaport')"


def test_a_syntax_error_never_quotes_the_offending_line() -> None:
    text = BASE.replace("token: ${APP_TOKEN}", "token: literal-secret-123: oops")
    err = error(text)
    assert err.line == 8
    assert "literal-secret-123" not in str(err)
    assert str(err).startswith("job.yaml:8: YAML syntax error at column")


def test_an_empty_token_is_an_error_without_its_value() -> None:
    err = error(BASE, {**ENV, "APP_TOKEN": " "})
    assert str(err) == "job.yaml:8: target.token must not be empty"


def test_smtp_credentials_from_the_url_or_from_keys() -> None:
    in_url = parse(with_base("notifications:\n  email: a@example.com\n  smtp: smtp://ops:p%40ss@mail:2525\n"))
    assert in_url.notifications is not None
    assert in_url.notifications.smtp == SmtpConfig("mail", 2525, user="ops", password=Secret("p@ss"))
    keys = parse(
        with_base("""\
        notifications:
          email: a@example.com
          smtp: smtp://mail
          smtp_user: ${SMTP_USER:-}
          smtp_password: ${SMTP_PASSWORD:-}
        """),
        {**ENV, "SMTP_PASSWORD": ""},
    )
    assert keys.notifications is not None
    assert keys.notifications.smtp == SmtpConfig("mail", 25)


# -- errors, each with its line --------------------------------------------------------------


@pytest.mark.parametrize("path", sorted((DATA / "invalid").glob("*.yaml")), ids=lambda p: p.stem)
def test_invalid_job_file_corpus(path: Path) -> None:
    """Each file's first line reads ``# expect: <line>: <message>``."""
    expected = path.read_text(encoding="utf-8").splitlines()[0].removeprefix("# expect: ")
    with pytest.raises(JobFileError) as info:
        load_job_file(path, ENV)
    assert str(info.value) == f"{path.name}:{expected}"


def test_a_missing_file_is_a_job_file_error(tmp_path: Path) -> None:
    with pytest.raises(JobFileError, match=r"^absent\.yaml: cannot read the job file: No such file"):
        load_job_file(tmp_path / "absent.yaml", ENV)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # missing required keys: at the enclosing mapping
        (BASE.replace("name: app\n", ""), "job.yaml:1: name is required"),
        (BASE.replace("name: app", "name:"), "job.yaml:1: name is required"),
        ("name: app\ntarget:\n  url: https://a.example.com\n  token: t\n", "job.yaml:1: source is required"),
        (BASE[: BASE.index("target:")], "job.yaml:1: target is required"),
        (BASE.replace("  type: scim\n", ""), "job.yaml:2: source.type is required"),
        (BASE.replace("  token: ${APP_TOKEN}\n", ""), "job.yaml:6: target.token is required"),
        (BASE.replace("  url: https://app.example.com/scim/v2\n", ""), "job.yaml:6: target.url is required"),
        # wrong types
        (BASE.replace("name: app", "name: [a, b]"), "job.yaml:1: name must be a string (got a list)"),
        (
            "name: app\nsource: scim\ntarget: {url: 'https://x.example.com', token: t}\n",
            "job.yaml:2: source must be a mapping (got a string)",
        ),
        (with_base("target2: 1\n"), "job.yaml:9: unknown key 'target2'; did you mean 'target'?"),
        (
            BASE.replace("  token: ${APP_TOKEN}", "  token: ${APP_TOKEN}\n  concurency: 4"),
            "job.yaml:9: unknown key 'concurency' in target; did you mean 'concurrency'?",
        ),
        (
            with_base("settings:\n  dry_run: true\n"),
            "job.yaml:10: unknown key 'dry_run' in settings (expected one of "
            "skip_out_of_scope_deletions, deletion_threshold)",
        ),
        (with_base("Name: x\n"), "job.yaml:9: unknown key 'Name'; did you mean 'name'?"),
        (with_base("name: again\n"), "job.yaml:9: duplicate key name (first at line 1)"),
        (
            with_base("interval_minutes: often\n"),
            "job.yaml:9: interval_minutes must be an integer (got 'often')",
        ),
        (
            with_base("interval_minutes: 0\n"),
            "job.yaml:9: interval_minutes must be between 1 and 10080 (got 0)",
        ),
        (
            with_base("settings:\n  deletion_threshold: -1\n"),
            "job.yaml:10: settings.deletion_threshold must be at least 0 (got -1)",
        ),
        (
            with_base("logs:\n  retention_days: 0\n"),
            "job.yaml:10: logs.retention_days must be between 1 and 3660 (got 0)",
        ),
        (
            with_base("logs:\n  retention_days: a month\n"),
            "job.yaml:10: logs.retention_days must be an integer (got 'a month')",
        ),
        (
            with_base("logs:\n  retention: 30\n"),
            "job.yaml:10: unknown key 'retention' in logs; did you mean 'retention_days'?",
        ),
        (with_base("logs: 30\n"), "job.yaml:9: logs must be a mapping (got a number)"),
        (
            with_base("settings:\n  skip_out_of_scope_deletions: maybe\n"),
            "job.yaml:10: settings.skip_out_of_scope_deletions must be true or false (got 'maybe')",
        ),
        (
            BASE.replace("  token: ${APP_TOKEN}", "  token: ${APP_TOKEN}\n  concurrency: 0"),
            "job.yaml:9: target.concurrency must be between 1 and 256 (got 0)",
        ),
        (
            BASE.replace("  token: ${APP_TOKEN}", "  token: ${APP_TOKEN}\n  timeout_seconds: -1"),
            "job.yaml:9: target.timeout_seconds must be a number above 0 and at most 3600",
        ),
        (
            BASE.replace("  token: ${APP_TOKEN}", "  token: ${APP_TOKEN}\n  patch_dialect: okta"),
            "job.yaml:9: target.patch_dialect must be one of entra, aadOptscim062020, rfc (got 'okta')",
        ),
        (
            with_base("template: okta\n"),
            "job.yaml:9: template must be one of clarizen-one, scim-default (got 'okta')",
        ),
        (
            BASE.replace("name: app", "name: my job"),
            "job.yaml:1: name must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        ),
        # URLs
        (
            BASE.replace("https://app.example.com/scim/v2", "app.example.com/scim"),
            "job.yaml:7: target.url must be a http/https URL (got 'app.example.com/scim')",
        ),
        (
            BASE.replace("http://dir.example.com/scim/v2", "ftp://dir.example.com"),
            "job.yaml:4: source.url must be a http/https URL (got 'ftp://dir.example.com')",
        ),
        (
            BASE.replace("https://app.example.com/scim/v2", "https:///scim"),
            "job.yaml:7: target.url must be a URL with a host name (got 'https:///scim')",
        ),
        (
            with_base("state: state.db\n"),
            "job.yaml:9: state must be a database URL such as sqlite:///jobs/clarizen.db",
        ),
        # sources
        (
            BASE.replace("  type: scim", "  type: csv"),
            "job.yaml:4: source.url does not apply to a csv source (use source.path)",
        ),
        (
            BASE.replace("  type: scim", "  type: scim\n  path: users.csv"),
            "job.yaml:4: source.path does not apply to a scim source (use source.url)",
        ),
        (
            "name: app\nsource:\n  type: jsonl\ntarget: {url: 'https://x.example.com', token: t}\n",
            "job.yaml:2: source.path is required",
        ),
        (
            BASE.replace("  type: scim", "  type: scim\n  options: [a]"),
            "job.yaml:4: source.options must be a mapping (got a list)",
        ),
        # source options: checked when the file is read, not at the first sync (or never)
        (
            BASE.replace("  type: scim", "  type: scim\n  options: {page_sise: 100}"),
            "job.yaml:4: unknown key 'page_sise' in source.options; did you mean 'page_size'?",
        ),
        (
            BASE.replace("  type: scim", "  type: scim\n  options: {page_size: abc}"),
            "job.yaml:4: source.options.page_size must be an integer (got 'abc')",
        ),
        (
            BASE.replace("  type: scim", "  type: scim\n  options: {page_size: 0}"),
            "job.yaml:4: source.options.page_size must be between 1 and 100000 (got 0)",
        ),
        (
            BASE.replace("  type: scim", "  type: scim\n  options: {paging: cursor}"),
            "job.yaml:4: source.options.paging must be one of auto, keyset, offset (got 'cursor')",
        ),
        (
            "name: app\nsource: {type: csv, path: a.csv, options: {delimiter: ';;'}}\n"
            "target: {url: 'https://x.example.com', token: t}\n",
            "job.yaml:2: source.options.delimiter must be one character (got ';;')",
        ),
        (
            "name: app\nsource: {type: csv, path: a.csv, options: {delimiter: ''}}\n"
            "target: {url: 'https://x.example.com', token: t}\n",
            "job.yaml:2: source.options.delimiter must be one character (got '')",
        ),
        (
            "name: app\nsource: {type: jsonl, path: a.jsonl, options: {delimiter: ';'}}\n"
            "target: {url: 'https://x.example.com', token: t}\n",
            "job.yaml:2: unknown key 'delimiter' in source.options (expected one of anchor, snapshot)",
        ),
        # YAML structure
        ("", "job.yaml:1: the job file is empty"),
        ("- a\n- b\n", "job.yaml:1: the job file must be a mapping (got a list)"),
        (with_base("<<: {interval_minutes: 3}\n"), "job.yaml:9: YAML merge keys (<<) are not supported"),
        (
            BASE + "---\nname: b\n",
            "job.yaml:9: YAML syntax error at column 1: "
            "expected a single document in the stream but found another document",
        ),
        (with_base("[a]: 1\n"), "job.yaml:9: keys must be plain strings"),
    ],
)
def test_structural_errors_name_the_line(text: str, expected: str) -> None:
    assert str(error(text)) == expected


@pytest.mark.parametrize(
    ("mappings", "expected"),
    [
        (
            "- {target: title}",
            "10: mappings[0] needs exactly one of source, constant or expression (or type: None)",
        ),
        (
            "- {target: title, source: jobTitle, constant: x}",
            "10: mappings[0] needs exactly one of source, constant or expression (or type: None)",
        ),
        (
            "- {target: title, type: Constant, source: jobTitle}",
            "10: mappings[0] has type Constant and needs constant",
        ),
        (
            "- {target: title, type: Direct, source: jobTitle, expression: x}",
            "10: mappings[0].expression does not apply to a mapping of type Direct",
        ),
        (
            "- {target: title, type: None, constant: x}",
            "10: mappings[0].constant does not apply to a mapping of type None",
        ),
        (
            "- {target: title, type: Lookup, source: x}",
            "10: mappings[0].type must be one of Direct, Constant, Expression, None (got 'Lookup')",
        ),
        ("- {source: jobTitle}", "10: mappings[0].target is required"),
        (
            "- {target: id, source: objectId}",
            "10: mappings[0].target: the target primary key 'id' cannot be mapped (entra-behaviour.md 2.15)",
        ),
        (
            "- {target: title, source: x, apply: Sometimes}",
            "10: mappings[0].apply must be one of Always, OnlyDuringCreation (got 'Sometimes')",
        ),
        (
            "- {target: title, source: x, object: device}",
            "10: mappings[0].object must be one of user, group (got 'device')",
        ),
        (
            "- {target: title, source: x, matching_precedence: 0}",
            "10: mappings[0].matching_precedence must be at least 1 (got 0)",
        ),
        (
            "- {target: title, source: x, sourse: y}",
            "10: unknown key 'sourse' in mappings[0]; did you mean 'source'?",
        ),
        ("- title", "10: mappings[0] must be a mapping (got a string)"),
        (
            "- {target: title, source: a}\n- {target: Title, source: b}",
            "11: mappings[1] maps user attribute 'Title' again (first at line 10)",
        ),
        (
            "- {target: userName, source: a, matching_precedence: 1}\n"
            "- {target: externalId, source: b, matching_precedence: 1}",
            "11: mappings[1] repeats user matching_precedence 1 (first at line 10)",
        ),
        (
            "- {target: userName, expression: 'SelectUniqueValue([mail])', matching_precedence: 1}",
            "10: mappings[0]: SelectUniqueValue cannot be used on a matching attribute "
            "(entra-behaviour.md 2.4)",
        ),
    ],
)
def test_malformed_mapping_overrides(mappings: str, expected: str) -> None:
    text = BASE + "mappings:\n" + textwrap.indent(mappings, "  ") + "\n"
    assert str(error(text)) == f"job.yaml:{expected}"


def test_the_same_target_may_be_mapped_once_per_object_type() -> None:
    job = parse(
        with_base(
            "mappings:\n  - {target: displayName, source: a}\n"
            "  - {target: displayName, source: b, object: group}\n"
        )
    )
    assert [m.object for m in job.mappings] == [MappingObject.USER, MappingObject.GROUP]


def test_an_expression_longer_than_10000_characters_is_rejected() -> None:
    text = with_base(f"mappings:\n  - target: title\n    expression: '{'x' * 10_001}'\n")
    assert str(error(text)) == (
        "job.yaml:11: mappings[0].expression is 10001 characters; the limit is 10000 "
        "(entra-behaviour.md 2.15)"
    )


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        (
            "mode: all\nassignments:\n  - {user: a}",
            "11: scope.assignments only applies when scope.mode is assigned (remove them for mode: all)",
        ),
        ("mode: some", "10: scope.mode must be one of assigned, all (got 'some')"),
        (
            "assignments:\n  - {user: a, group: b}",
            "11: scope.assignments[0] needs exactly one of user or group",
        ),
        ("assignments:\n  - {role: User}", "11: scope.assignments[0] needs exactly one of user or group"),
        ("assignments: {user: a}", "10: scope.assignments must be a list (got a mapping)"),
        (
            "filters:\n  users:\n    - {attribute: department, operator: EQUALS, value: x}",
            "12: scope.filters.users[0] must be a list of clauses (one filter: its clauses are ANDed)",
        ),
        ("filters:\n  users:\n    - []", "12: scope.filters.users[0] must have at least one clause"),
        (
            "filters:\n  devices: []",
            "11: unknown key 'devices' in scope.filters (expected one of users, groups)",
        ),
        (
            "filters:\n  users:\n    - - {attribute: manager, operator: IS NOT NULL}",
            "12: scope.filters.users[0][0]: 'manager' cannot be used as a scoping attribute "
            "(entra-behaviour.md 2.3)",
        ),
        (
            "filters:\n  users:\n    - - attribute: level\n"
            "        operator: Greater_Than\n        value: high",
            "14: scope.filters.users[0][0]: Greater_Than needs an integer value",
        ),
        (
            "filters:\n  users:\n    - - attribute: accountEnabled\n"
            "        operator: IS TRUE\n        value: 'true'",
            "14: scope.filters.users[0][0]: IS TRUE takes no value",
        ),
        (
            "filters:\n  groups:\n    - - attribute: displayName\n        operator: EQUALS",
            "13: scope.filters.groups[0][0]: EQUALS needs a value",
        ),
        (
            "filters:\n  users:\n    - - {operator: IS NULL}",
            "12: scope.filters.users[0][0].attribute is required",
        ),
        (
            "filters:\n  users:\n    - - {attribute: x, operater: IS NULL}",
            "12: unknown key 'operater' in scope.filters.users[0][0]; did you mean 'operator'?",
        ),
        (
            "filters:\n  users:\n    - - {attribute: x, operator: CONTAINS, value: y}",
            "12: scope.filters.users[0][0].operator: unknown scoping operator 'CONTAINS' (expected one "
            "of &, !&, ENDS_WITH, EQUALS, NOT EQUALS, Greater_Than, Greater_Than_OR_EQUALS, Includes, "
            "IS TRUE, IS FALSE, IS NULL, IS NOT NULL, REGEX MATCH, NOT REGEX MATCH)",
        ),
    ],
)
def test_scope_errors(scope: str, expected: str) -> None:
    text = BASE + "scope:\n" + textwrap.indent(scope, "  ") + "\n"
    assert str(error(text)) == f"job.yaml:{expected}"


@pytest.mark.parametrize(
    ("notifications", "expected"),
    [
        ("smtp: smtp://mail", "9: notifications.email is required"),
        ("email: a@example.com", "9: notifications.smtp is required"),
        ("email: not-an-address\nsmtp: smtp://mail", "10: notifications.email must be an e-mail address"),
        (
            "email: [a@example.com, nope]\nsmtp: smtp://mail",
            "10: notifications.email[1] must be an e-mail address",
        ),
        ("email: []\nsmtp: smtp://mail", "10: notifications.email must name at least one address"),
        (
            "email: a@example.com\nsmtp: http://mail",
            "11: notifications.smtp must be a smtp/smtps URL (got 'http://mail')",
        ),
        (
            "email: a@example.com\nsmtp: smtp://u:p@mail\nsmtp_password: x",
            "12: notifications.smtp_password conflicts with the user-info in notifications.smtp",
        ),
        (
            "email: a@example.com\nsmtp: smtp://mail\nsender: me",
            "12: notifications.sender must be an e-mail address",
        ),
        (
            "email: a@example.com\nsmtp: smtp://mail\nnotify_on_failure: sometimes",
            "12: notifications.notify_on_failure must be true or false (got 'sometimes')",
        ),
    ],
)
def test_notification_errors(notifications: str, expected: str) -> None:
    text = BASE + "notifications:\n" + textwrap.indent(notifications, "  ") + "\n"
    assert str(error(text)) == f"job.yaml:{expected}"


def test_error_attributes_carry_the_position() -> None:
    err = error(BASE.replace("  type: scim", "  type: ldap"))
    assert (err.source_name, err.line, err.column) == ("job.yaml", 3, 9)
    assert err.problem == "source.type must be one of scim, csv, jsonl (got 'ldap')"


@pytest.mark.parametrize("delimiter", ["\\t", " ", ";"])
def test_a_csv_delimiter_may_be_a_tab_or_a_space(delimiter: str) -> None:
    """A TSV export: the tab is one character, not an empty value."""
    text = (
        f'name: app\nsource: {{type: csv, path: a.tsv, options: {{delimiter: "{delimiter}"}}}}\n'
        "target: {url: 'https://x.example.com', token: t}\n"
    )
    job = parse_job(text, ENV, source_name="job.yaml")
    assert job.source.option("delimiter") == delimiter.replace("\\t", "\t")

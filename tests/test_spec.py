"""The DAG loader: every field's accepted forms, Dagu's defaults, and every error message."""
from __future__ import annotations

import textwrap

import pytest

from dagu import spec
from dagu.errors import LoadError
from dagu.model import CHAIN


def load(text: str, **kw):
    kw.setdefault("location", "/dags/test.yaml")
    return spec.load(textwrap.dedent(text), spec.LoadOptions(**kw))


def load_errors(text: str, **kw) -> list[str]:
    with pytest.raises(LoadError) as info:
        load(text, **kw)
    return info.value.errors


def evaluated(text: str, environ=None, runner=None, **kw):
    env = dict(environ or {})
    return load(text, evaluate=True, environ=env, run_command=runner or (lambda c: f"<{c}>"), **kw)


# --- defaults ------------------------------------------------------------------------------------

def test_defaults_are_daguS():
    dag = load("steps:\n  - name: a\n    command: 'true'\n")
    assert dag.name == "test"
    assert dag.type == CHAIN
    assert dag.hist_retention_days == 30
    assert dag.max_clean_up_time_sec == 60
    assert dag.max_active_runs == 1
    assert dag.max_active_steps == 0
    assert dag.steps[0].dir == "/dags"


@pytest.mark.parametrize("text", ["", "# only a comment\n"])
def test_empty_file_is_an_empty_dag(text):
    dag = load(text)
    assert dag.name == "test" and dag.steps == ()


# --- steps and ordering --------------------------------------------------------------------------

CHAIN_DAG = """
steps:
  - name: s1
    command: echo 1
  - name: s2
    command: echo 2
  - name: s3
    command: echo 3
    depends: []
  - name: s4
    command: echo 4
"""


@pytest.mark.parametrize("type_line, expected", [
    ("", {"s1": (), "s2": ("s1",), "s3": (), "s4": ("s3",)}),
    ("type: chain\n", {"s1": (), "s2": ("s1",), "s3": (), "s4": ("s3",)}),
    ("type: graph\n", {"s1": (), "s2": (), "s3": (), "s4": ()}),
])
def test_chain_type_links_steps_without_depends(type_line, expected):
    dag = load(type_line + CHAIN_DAG)
    assert {s.name: s.depends for s in dag.steps} == expected


@pytest.mark.parametrize("depends, expected", [
    ("depends: a", ("a",)),
    ("depends: [a]", ("a",)),
    ("depends: [a, b]", ("a", "b")),
    ("depends: the-a", ("a",)),          # a step id resolves to its name
])
def test_depends_forms(depends, expected):
    dag = load(f"""
    type: graph
    steps:
      - name: a
        id: the-a
        command: 'true'
      - name: b
        command: 'true'
      - name: c
        command: 'true'
        {depends}
    """)
    assert dag.step("c").depends == expected


@pytest.mark.parametrize("command, cmd, args, text", [
    ("command: echo 1", "echo", ("1",), "echo 1"),
    ("command: [echo, 1]", "echo", ("1",), "echo 1"),
    ("command:\n      - echo\n      - hello world", "echo", ("hello world",), "echo 'hello world'"),
    ("command: echo \"a b\" c", "echo", ("a b", "c"), 'echo "a b" c'),
])
def test_command_forms(command, cmd, args, text):
    step = load(f"steps:\n  - name: s\n    {command}\n").steps[0]
    assert (step.command, step.args, step.cmd_with_args) == (cmd, args, text)


def test_steps_as_a_map_use_keys_as_names():
    dag = load("steps:\n  first:\n    command: 'true'\n  second:\n    command: 'true'\n")
    assert [s.name for s in dag.steps] == ["first", "second"]
    assert dag.steps[1].depends == ("first",)


def test_script_shell_dir_output_stdout_stderr():
    step = load("""
    steps:
      - name: s
        script: |
          echo hi
        shell: bash -o pipefail -c
        dir: /tmp
        output: $OUT
        stdout: /tmp/o.txt
        stderr: /tmp/e.txt
        signalOnStop: SIGINT
        mailOnError: true
    """).steps[0]
    assert step.script == "echo hi\n" and step.shell == "bash -o pipefail -c"
    assert (step.dir, step.output, step.stdout, step.stderr) == ("/tmp", "OUT", "/tmp/o.txt", "/tmp/e.txt")
    assert step.signal_on_stop == "SIGINT" and step.mail_on_error


def test_later_dagu_step_fields_env_and_working_dir():
    step = load("""
    steps:
      - name: s
        command: env
        workingDir: /srv
        env:
          - A: 1
          - B=two
    """).steps[0]
    assert step.dir == "/srv"
    assert step.env == (("A", "1"), ("B", "two"))


@pytest.mark.parametrize("precondition, expected", [
    ("preconditions: test -f x", [("test -f x", "")]),
    ("precondition:\n      - condition: '`date`'\n        expected: re:\\d+", [("`date`", "re:\\d+")]),
    ("preconditions:\n      - command: 'true'", [("true", "")]),
    ("preconditions:\n      condition: $X\n      expected: y", [("$X", "y")]),
])
def test_precondition_forms(precondition, expected):
    step = load(f"steps:\n  - name: s\n    command: 'true'\n    {precondition}\n").steps[0]
    assert [(c.condition, c.expected) for c in step.preconditions] == expected


def test_continue_on_retry_repeat():
    step = load("""
    steps:
      - name: s
        command: 'false'
        continueOn:
          failure: true
          skipped: true
          exitCode: [1, 2]
          output: ["re:^warn", done]
          markSuccess: true
        retryPolicy:
          limit: 3
          intervalSec: 10
          exitCode: [1]
          backoff: 1.5
          maxIntervalSec: 60
        repeatPolicy:
          repeat: until
          condition: "`cat f`"
          expected: ok
          intervalSec: 5
          limit: 4
    """).steps[0]
    c, r, p = step.continue_on, step.retry_policy, step.repeat_policy
    assert (c.failure, c.skipped, c.exit_codes, c.output, c.mark_success) == (
        True, True, (1, 2), ("re:^warn", "done"), True)
    assert (r.limit, r.interval_sec, r.exit_codes, r.backoff, r.max_interval_sec) == (3, 10, (1,), 1.5, 60)
    assert (p.mode, p.condition, p.expected, p.interval_sec, p.limit) == ("until", "`cat f`", "ok", 5, 4)


@pytest.mark.parametrize("policy, expected", [
    ("repeat: true\n      intervalSec: 60", (True, "", 60, ())),
    ("exitCode: [42]\n      intervalSec: 2", (False, "", 2, (42,))),
    ("repeat: while\n      exitCode: 1", (False, "while", 0, (1,))),
])
def test_repeat_policy_forms(policy, expected):
    p = load(f"steps:\n  - name: s\n    command: x\n    repeatPolicy:\n      {policy}\n").steps[0].repeat_policy
    assert (p.repeat, p.mode, p.interval_sec, p.exit_codes) == expected


@pytest.mark.parametrize("retry, limit, interval", [
    ("limit: 2\n      intervalSec: 1", 2, 1),
    ("limit: '${N}'\n      intervalSec: '3'", "${N}", 3),
    ("backoff: true\n      limit: 1", 1, 0),
])
def test_retry_policy_forms(retry, limit, interval):
    r = load(f"steps:\n  - name: s\n    command: x\n    retryPolicy:\n      {retry}\n").steps[0].retry_policy
    assert (r.limit, r.interval_sec) == (limit, interval)


def test_sub_dag_and_parallel():
    dag = load("""
    steps:
      - name: one
        run: child
        params: "P1=v1 P2=v2"
      - name: many
        run: child
        parallel:
          items: [a, b]
          maxConcurrent: 2
      - name: var
        run: child
        parallel: ${ITEMS}
    """)
    one, many, var = dag.steps
    assert (one.executor.type, one.run, one.params) == ("dag", "child", 'P1="v1" P2="v2"')
    assert (many.executor.type, many.parallel.items, many.parallel.max_concurrent) == ("parallel", ("a", "b"), 2)
    assert var.parallel.variable == "${ITEMS}"


@pytest.mark.parametrize("executor, kind, config", [
    ("executor: http", "http", {}),
    ("executor:\n      type: http\n      config:\n        timeout: 5", "http", {"timeout": 5}),
])
def test_executor_forms(executor, kind, config):
    step = load(f"steps:\n  - name: s\n    command: GET http://x\n    {executor}\n").steps[0]
    assert (step.executor.type, step.executor.config) == (kind, config)


def test_handlers_get_fixed_names():
    dag = load("""
    handlerOn:
      success: {command: echo ok}
      failure: {command: echo bad}
      cancel: {command: echo c}
      exit: {command: echo bye}
    steps:
      - name: s
        command: 'true'
    """)
    assert {k: s.name for k, s in dag.handlers} == {
        "success": "onSuccess", "failure": "onFailure", "cancel": "onCancel", "exit": "onExit"}
    assert dag.handler("exit").depends == ()


# --- DAG-level fields ----------------------------------------------------------------------------

@pytest.mark.parametrize("schedule, start, stop, restart", [
    ("schedule: '5 4 * * *'", ["5 4 * * *"], [], []),
    ("schedule: ['0 1 * * *', '0 18 * * *']", ["0 1 * * *", "0 18 * * *"], [], []),
    ("schedule:\n  start: '0 8 * * *'\n  stop: ['0 18 * * *']\n  restart: '0 12 * * *'",
     ["0 8 * * *"], ["0 18 * * *"], ["0 12 * * *"]),
    ("schedule: '@daily'", ["@daily"], [], []),
    ("schedule: 'CRON_TZ=Asia/Tokyo 0 9 * * MON-FRI'", ["CRON_TZ=Asia/Tokyo 0 9 * * MON-FRI"], [], []),
])
def test_schedule_forms(schedule, start, stop, restart):
    dag = load(schedule + "\n")
    assert [s.expression for s in dag.schedule] == start
    assert [s.expression for s in dag.stop_schedule] == stop
    assert [s.expression for s in dag.restart_schedule] == restart


@pytest.mark.parametrize("tags, expected", [
    ("tags: daily,Monthly", ("daily", "monthly")),
    ("tags: [Daily, ' x ']", ("daily", "x")),
])
def test_tags_forms(tags, expected):
    assert load(tags + "\n").tags == expected


@pytest.mark.parametrize("env, expected", [
    ("env:\n  A: 1\n  B: two", (("A", "1"), ("B", "two"))),
    ("env:\n  - A: 1\n  - B: true", (("A", "1"), ("B", "true"))),
    ("env:\n  - A=1", (("A", "1"),)),
])
def test_env_forms_unevaluated(env, expected):
    assert load(env + "\n").env == expected


def test_env_is_evaluated_in_order_with_commands_and_earlier_values():
    dag = evaluated("""
    env:
      - BEE: "`echo BEE`"
      - FOO: "${BEE}:BAZ:${HOME}"
    """, environ={"HOME": "/h"})
    assert dag.env == (("BEE", "<echo BEE>"), ("FOO", "<echo BEE>:BAZ:/h"))


def test_scalar_fields():
    dag = load("""
    name: my-dag
    group: ops
    description: does things
    logDir: /var/log/x
    timeoutSec: 30
    delaySec: 1
    restartWaitSec: 2
    histRetentionDays: 365
    maxActiveRuns: 5
    maxActiveSteps: 3
    maxCleanUpTimeSec: 10
    queue: q1
    skipIfSuccessful: true
    catchupWindow: 6h
    mailOn: {failure: true, success: false}
    smtp: {host: smtp.x, port: 25}
    errorMail: {from: a@x, to: b@x, prefix: "[E]", attachLogs: true}
    """)
    assert (dag.name, dag.group, dag.description, dag.log_dir) == ("my-dag", "ops", "does things", "/var/log/x")
    assert (dag.timeout_sec, dag.delay_sec, dag.restart_wait_sec) == (30, 1, 2)
    assert (dag.hist_retention_days, dag.max_active_runs, dag.max_active_steps) == (365, 5, 3)
    assert (dag.max_clean_up_time_sec, dag.queue, dag.skip_if_successful) == (10, "q1", True)
    assert dag.catchup_window_sec == 6 * 3600
    assert dag.mail_on_failure and not dag.mail_on_success
    assert dag.smtp.port == "25" and dag.error_mail.to == ("b@x",) and dag.error_mail.attach_logs


def test_keys_match_case_insensitively_as_in_dagu():
    dag = load("MaxActiveRuns: 4\nSteps:\n  - Name: s\n    Command: 'true'\n")
    assert dag.max_active_runs == 4 and dag.steps[0].name == "s"


# --- params --------------------------------------------------------------------------------------

@pytest.mark.parametrize("params, expected", [
    ('params: "TEST_PARAM $1"', ["1=TEST_PARAM", "2=TEST_PARAM"]),
    ('params: x="a b c" y="d e f"', ["x=a b c", "y=d e f"]),
    ("params: first P1=foo P2=${A001} P3=`/bin/echo BAR` X=bar Y=${P1} Z=\"A B C\"\nenv:\n  - A001: TEXT",
     ["1=first", "P1=foo", "P2=TEXT", "P3=<", "X=bar", "Y=foo", "Z=A B C"]),
    ("params:\n  - A: 1\n  - b", ["A=1", "2=b"]),
    ("params:\n  NAME: Dagu\n  AGE: 30", ["NAME=Dagu", "AGE=30"]),
])
def test_params_resolve_like_dagu(params, expected):
    dag = evaluated(params + "\n", runner=lambda c: "<" if "echo" in c else "?")
    assert dag.params_list == expected


@pytest.mark.parametrize("override, expected", [
    ("FOO=X BAZ=Y", ["FOO=X", "BAR=bar", "BAZ=Y"]),
    # Dagu names positional overrides "1", "2" first: named params stay (real Dagu shows
    # `ITEM=default 1=item1` for a parallel item given to `params: [ITEM: default]`)
    ("a b", ["FOO=foo", "BAR=bar", "BAZ=baz", "1=a", "2=b"]),
    ("NEW=1", ["FOO=foo", "BAR=bar", "BAZ=baz", "NEW=1"]),
])
def test_params_overrides(override, expected):
    from dagu.params import parse_param_string
    dag = evaluated("params:\n  - FOO: foo\n  - BAR: bar\n  - BAZ: baz\n",
                    params=parse_param_string(override))
    assert dag.params_list == expected


def test_unevaluated_params_keep_the_text():
    dag = load("params: A=`date` B=${X}\n")
    assert dag.params_list == ["A=`date`", "B=${X}"]
    assert dag.default_params == 'A="`date`" B="${X}"'


# --- multiple documents and base config --------------------------------------------------------

def test_other_documents_are_local_dags():
    dag = load("""
    steps:
      - name: call
        run: child
    ---
    name: child
    steps:
      - name: c
        command: echo child
    """)
    assert [d.name for d in dag.local_dags] == ["child"]
    assert dag.local_dag("child").steps[0].name == "c"


def test_base_config_is_merged_under_the_dag():
    base = "env:\n  BASE_ENV: base\n  OVER: base\nlogDir: /base/logs\nhistRetentionDays: 7\ntags: a\n"
    dag = load("env:\n  CHILD: c\n  OVER: child\ntags: b\nsteps:\n  - name: s\n    command: 'true'\n",
               base_text=base)
    assert dag.env == (("BASE_ENV", "base"), ("OVER", "base"), ("CHILD", "c"), ("OVER", "child"))
    assert dag.log_dir == "/base/logs" and dag.hist_retention_days == 7
    assert dag.tags == ("a", "b")


def test_base_mail_settings_are_overridden_whole():
    dag = load("mailOn: {failure: false, success: true}\n", base_text="mailOn: {failure: true}\n")
    assert (dag.mail_on_failure, dag.mail_on_success) == (False, True)


# --- errors: every problem at once, each naming field, value and line ----------------------------

@pytest.mark.parametrize("text, messages", [
    ("invalidKey: test\n", ["test.yaml:1: DAG has invalid keys: invalidKey"]),
    ("invalidyaml", ["test.yaml:1:", "must be a mapping", "'invalidyaml'"]),
    ("steps:\n  - name: a\n    command: x\n   bad: [\n", ["test.yaml:", "line 4", "invalid YAML"]),
    ("steps:\n  - name: step1\n", ["test.yaml:2:", "step command is required"]),
    ("steps:\n  - name: s\n    command: ''\n", ["test.yaml:3:", "step command is empty"]),
    ("schedule: '1'\n", ["test.yaml:1:", "invalid schedule '1'"]),
    ("schedule: '61 * * * *'\n", ["invalid schedule '61 * * * *'", "minute"]),
    ("type: invalid-type\n", ["invalid type: invalid-type (must be one of: graph, chain, agent)"]),
    ("type: agent\n", ["agent type is not yet implemented"]),
    ("steps:\n  - name: s\n    command: x\n    foo: 1\n", ["test.yaml:4: steps[0] (s) has invalid keys: foo"]),
    ("steps:\n  - name: a\n    command: x\n  - name: a\n    command: y\n", ["duplicate step name 'a'"]),
    ("steps:\n  - name: a\n    command: x\n    depends: nope\n",
     ["step a depends on non-existent step (value: nope)"]),
    ("type: graph\nsteps:\n  - {name: a, command: x, depends: b}\n  - {name: b, command: x, depends: a}\n",
     ["cycle detected: a -> b -> a"]),
    ("steps:\n  - name: s\n    command: x\n    retryPolicy:\n      intervalSec: 1\n", ["retryPolicy: limit is required"]),
    ("steps:\n  - name: s\n    command: x\n    retryPolicy:\n      limit: many\n", ["limit: expected an integer"]),
    ("steps:\n  - name: s\n    command: x\n    retryPolicy: {limit: 1, backoff: 0.5}\n", ["backoff: must be"]),
    ("steps:\n  - name: s\n    command: x\n    repeatPolicy:\n      repeat: while\n", ["repeat: while needs a condition or exitCode"]),
    ("steps:\n  - name: s\n    command: x\n    repeatPolicy:\n      exitCodes: [1]\n", ["has invalid keys: exitCodes"]),
    ("steps:\n  - name: s\n    command: x\n    signalOnStop: STOPIT\n", ["invalid signal 'STOPIT'"]),
    ("steps:\n  - name: s\n    command: x\n    executor: teleport\n", ["unknown executor type 'teleport'"]),
    ("steps:\n  - name: s\n    command: x\n    executor: {type: http, conf: {}}\n", ["executor has invalid keys: conf"]),
    ("steps:\n  - name: s\n    command: x\n    parallel: [a]\n", ["parallel requires run"]),
    ("steps:\n  - name: s\n    run: c\n    parallel: {items: [a], maxConcurrent: 0}\n", ["maxConcurrent: must be greater than 0"]),
    ("steps:\n  - name: s\n    id: 1abc\n    command: x\n", ["invalid id '1abc'"]),
    ("steps:\n  - name: s\n    id: env\n    command: x\n", ["id 'env' is a reserved word"]),
    ("steps:\n  - name: " + "x" * 41 + "\n    command: x\n", ["at most 40 characters"]),
    ("maxActiveSteps: -1\n", ["maxActiveSteps: must be at least 0"]),
    ("timeoutSec: soon\n", ["timeoutSec: expected an integer, got 'soon'"]),
    ("params: {A: [1]}\n", []),   # loads: a list value is printed, not rejected
    ("env: [[1]]\n", ["invalid value for env"]),
    ("env:\n  A: {b: 1}\n", ["test.yaml:2:", "invalid value for env A"]),
    ("tags: {a: 1}\n", ["tags: expected a string or a list of strings"]),
    ("catchupWindow: sometime\n", ["invalid catchupWindow 'sometime'"]),
    ("steps: {}\nsteps: []\n", ["test.yaml:2: duplicate key 'steps'"]),
    ("steps:\n  - echo hi\n", ["a step must be a mapping"]),
    ("x: 1\n---\nsteps: []\n", ["has invalid keys: x", "DAG at index 1 must have a name"]),
])
def test_each_error_message(text, messages):
    if not messages:
        load(text)
        return
    errors = load_errors(text)
    joined = "\n".join(errors)
    for part in messages:
        assert part in joined


def test_all_problems_are_reported_at_once():
    errors = load_errors("""
    foo: 1
    schedule: bad
    steps:
      - name: a
      - name: b
        command: x
        depends: ghost
    """)
    assert len(errors) == 4
    assert any("has invalid keys: foo" in e for e in errors)
    assert any("invalid schedule" in e for e in errors)
    assert any("step command is required" in e for e in errors)
    assert any("non-existent step (value: ghost)" in e for e in errors)


def test_failing_backtick_in_env_is_a_load_error_for_a_run():
    def runner(cmd):
        from dagu.expand import ExpandError
        raise ExpandError("command `invalid command` exited with 127")

    with pytest.raises(LoadError) as info:
        evaluated("env:\n  - VAR: \"`invalid command`\"\n", runner=runner)
    assert "invalid value for env VAR" in str(info.value)


def test_file_name_must_be_a_valid_dag_name_when_no_name_given():
    errors = load_errors("steps: []\n", location="/dags/" + "n" * 201 + ".yaml")
    assert "at most 200 characters" in errors[0]
    assert load("steps: []\n", location="/dags/" + "n" * 41 + ".yaml").name == "n" * 41
    assert load("name: ok\n", location="/dags/bad name.yaml").name == "ok"


def test_local_dag_names_must_be_unique():
    errors = load_errors("steps: []\n---\nname: c\n---\nname: c\n")
    assert any('duplicate DAG name' in e for e in errors)


def test_yaml_anchors_and_merge_keys_work():
    dag = load("""
    steps:
      - &base
        name: a
        command: echo hi
      - <<: *base
        name: b
    """)
    assert [(s.name, s.cmd_with_args) for s in dag.steps] == [("a", "echo hi"), ("b", "echo hi")]


@pytest.mark.parametrize("line", [
    'echo "a b" c', "python3 -c 'print(1)'", 'a\\ b "x\\"y" z', "curl -sf http://x?i=1",
    'echo "step 1 in $MODE mode"', 'a"b c"d', "", "  spaced   out  ", "'' x", 'echo "it\'s"',
])
def test_command_words_split_like_a_shell(line):
    import shlex
    from dagu.stepspec import split_words
    assert split_words(line) == shlex.split(line)


def test_duplicate_step_names_are_not_also_reported_as_a_cycle():
    errors = load_errors("steps:\n  - name: a\n    command: x\n  - name: a\n    command: y\n")
    assert any("duplicate step name 'a'" in e for e in errors)
    assert not any("cycle" in e for e in errors)

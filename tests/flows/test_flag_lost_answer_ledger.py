"""A stage's flag write on the embedded AWS whose answer is lost but which lands, retried by its task:
the ledger records the flag's move, from where it was before the stage, as it would had the answer come."""

from __future__ import annotations

from rollway.approvals import auto_approve
from rollway.aws.flags import DynamoFlagStore
from rollway.flags import FlagState
from rollway.model import Weights
from rollway.reports import rollout_report
from rollway.spec import FlagBinding, RolloutSpec, Stage, WeeklyPhase
from tasks import flags as flag_tasks
from tests.adapters.test_dynamo_flags import answer_lost_once
from tests.flows.test_progressive_fakes import IMAGE, env_with_ledger, progressive_on

F = "use_sqs_architecture"


def test_a_resume_whose_flag_write_lost_its_answer_records_the_flag_move_it_made(aws, monkeypatch):
    """A phased rollout holds at 25 %; on-call lowers the canary to 5 % by hand and the rollout is resumed
    adopting it. The flag's PutItem (25 % -> 5 %) landed and its answer was lost; the task's retry found the
    flag at 5 %, its own write, and the ledger recorded no flag move: the report said the flag was at 25 %."""
    client = aws.get_client("dynamodb")
    store = DynamoFlagStore(client, aws.targets)
    store.put(FlagState(feature=F), expected_version=0, actor="seed", now=1.0)
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=180) for w in (5, 25, 100)],
                       phases=[WeeklyPhase(name="w1", weights=(5, 25)), WeeklyPhase(name="w2", weights=(100,))],
                       flags=[FlagBinding(feature=F)], monitor_seconds=0)
    env = env_with_ledger()
    env.flags = store
    progressive_on(env, spec, auto_approve(), phased=True)
    assert env.router.weights.canary == 25 and store.get(F).percentage == 25.0
    env.router.weights = Weights(stable=95, canary=5)
    monkeypatch.setattr(flag_tasks, "apply_bindings", flag_tasks.apply_bindings.with_options(retry_delay_seconds=0))
    with answer_lost_once(client) as lost:
        progressive_on(env, spec, auto_approve(), owner="run-2", phased=True, adopt=True)
    assert lost == ["PutItem"]

    record = env.ledger.get(env.targets.canary_service)
    kinds = [t.kind for t in record.history]
    adopted = kinds.index("adopt")
    assert kinds[adopted + 1] == "flag", [(t.kind, t.comment) for t in record.history[adopted:]]
    assert record.history[adopted + 1].comment.startswith(
        f"{F}: written (its answer was lost; read back): on 25% -> on 5% (v4)"), record.history[adopted + 1].comment
    moves = [t.comment.partition(" (v")[0].rpartition(": ")[2] for t in record.history if t.kind == "flag"]
    assert moves == ["off 0% -> on 5%", "on 5% -> on 25%", "on 25% -> on 5%", "on 5% -> on 25%"], moves
    assert store.get(F).percentage == 25.0
    assert f"`{F}` on 25% (v5)" in rollout_report(record), "the report reads the flag where the ledger left it"

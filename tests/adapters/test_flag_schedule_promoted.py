"""A flag bound on a schedule that reaches its last setting before the 100 % stage (``{25: 100}``) is
at the 100 % stage's settings already: the stage wrote nothing, and the rollout's newest write stayed
its 25 % stage. Promoted, the rollout still held the flag: another service's rollout binding it was
refused as held by it, and a person's change was told the promoted rollout's next stages would leave
it as set. On the embedded AWS (DynamoDB flags table and ledger)."""

from __future__ import annotations

from rollway.aws.flags import DynamoFlagStore
from rollway.aws.ledger import DynamoLedger
from rollway.flag_binding import FlagChange, apply_bindings, check_bindings, holder, person_change_note, set_flag
from rollway.flags import FlagState
from rollway.ledger import new_rollout_id
from rollway.spec import FlagBinding

F = "use_sqs_architecture"
SCHEDULED = [FlagBinding(feature=F, follow="schedule", schedule={5: 10, 25: 100})]
BILLING = "webordinary-billing-service-canary"


def test_a_rollout_promoted_with_its_scheduled_flag_at_its_last_setting_early_holds_the_flag_no_more(aws):
    client = aws.get_client("dynamodb")
    flags, ledger = DynamoFlagStore(client, aws.targets), DynamoLedger(client, aws.targets)
    flags.put(FlagState(feature=F), expected_version=0, actor="seed", now=1.0)
    rollout = new_rollout_id(1000.0)
    for at, weight in enumerate((5, 25, 50, 100)):
        apply_bindings(flags, SCHEDULED, weight, actor="alice", now=1000.0 + at, rollout=rollout, exclusive=True)
    flag = flags.get(F)
    assert (flag.enabled, flag.percentage) == (True, 100.0), flag

    assert holder(flags.audit(F)) is None, "promoted: the rollout moves the flag no more"
    # The billing service's rollout binding the flag starts (its ledger knows nothing of this rollout).
    check_bindings(flags, SCHEDULED, starting=True, ledger=ledger, service=BILLING)
    # A person turning it off after the promotion is told of no rollout moving it.
    after = set_flag(flags, FlagChange(feature=F, enabled=False, reason="kill switch"), actor="bob", now=2000.0).after
    assert person_change_note(flags.audit(F), after) is None
